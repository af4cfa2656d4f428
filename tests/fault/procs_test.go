package fault_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one supervised child process: started, killed and started again
// by the fault injector; when it exits on its own while it should run (a
// serve started while PostgreSQL was down, say) it is started again after a
// second, as a container orchestrator would.
type proc struct {
	t    *testing.T
	name string
	bin  string
	args []string
	dir  string // working directory (no .env there)
	log  string // stdout and stderr, appended across restarts
	// addr, when set, is where the process listens: start waits for it.
	addr string

	mu         sync.Mutex
	env        []string
	cmd        *exec.Cmd
	done       chan struct{}
	wantUp     bool
	killing    bool
	starts     int
	unexpected int // exits nobody asked for
}

func newProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	dir := t.TempDir()
	return &proc{t: t, name: name, bin: bin, args: args, env: env, dir: dir, log: filepath.Join(dir, name+".log")}
}

// setEnv replaces the environment used by the next start.
func (p *proc) setEnv(env []string) {
	p.mu.Lock()
	p.env = env
	p.mu.Unlock()
}

// start starts the process and, when it listens, waits (bounded) until it
// accepts connections.
func (p *proc) start() error {
	p.mu.Lock()
	p.wantUp = true
	err := p.startLocked()
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if p.addr != "" {
		return waitListening(p.addr, 60*time.Second)
	}
	return nil
}

func (p *proc) startLocked() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "=== %s start %d at %s\n", p.name, p.starts+1, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = p.dir, p.env, f, f
	// A group of its own: the emulator's sandbox processes go with it at
	// the end, and a kill of the suite's process group spares the children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.starts++
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		f.Close()
		close(done)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cmd != cmd || !p.wantUp || p.killing {
			return
		}
		p.unexpected++
		p.t.Logf("%s exited by itself (%v); starting it again in 1s", p.name, err)
		time.AfterFunc(time.Second, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.cmd == cmd && p.wantUp && !p.killing {
				if err := p.startLocked(); err != nil {
					p.t.Errorf("restart %s: %v", p.name, err)
				}
			}
		})
	}()
	return nil
}

// signal sends sig to the process (not its group) and waits until it
// exited; after grace it is SIGKILLed with its group. It stays down.
func (p *proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	p.killing = true
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(sig)
		select {
		case <-done:
		case <-time.After(grace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	p.mu.Lock()
	p.killing = false
	p.mu.Unlock()
}

// kill SIGKILLs the process (a crash: no shutdown code runs) and leaves it
// down until start.
func (p *proc) kill() {
	p.mu.Lock()
	p.wantUp = false
	p.mu.Unlock()
	p.signal(syscall.SIGKILL, 10*time.Second)
}

// stop asks the process to stop (SIGTERM), as an operator or an outage
// would, and leaves it down until start.
func (p *proc) stop() {
	p.mu.Lock()
	p.wantUp = false
	p.mu.Unlock()
	p.signal(syscall.SIGTERM, 15*time.Second)
}

// cleanup kills the process and its group for good.
func (p *proc) cleanup() {
	p.mu.Lock()
	p.wantUp = false
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// tail is the end of the process's log (for a failure report).
func (p *proc) tail(lines int) string {
	f, err := os.Open(p.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	var all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func (p *proc) counts() (starts, unexpected int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts, p.unexpected
}

func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %s: %w", addr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHealthy waits until a serve answers /healthz 200.
func waitHealthy(ctx context.Context, base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/healthz not 200 after %s (last: %v)", base, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
