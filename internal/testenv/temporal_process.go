package testenv

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/devstack"
	"github.com/threadbox/threadbox/workflows"
)

// TemporalProcess is a Temporal dev server run as a child process of the
// test with its state in a SQLite file: a test can SIGKILL it (a crash, not
// a graceful stop: testsuite.DevServer only interrupts) and start it again
// on the same port with the same workflows, timers and task queues, as a
// Temporal cluster that goes away and comes back does.
type TemporalProcess struct {
	Addr   string // host:port of the frontend
	DBFile string

	t    testing.TB
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  syncLog
}

// syncLog keeps the server's output for a failed test's log.
type syncLog struct {
	mu  sync.Mutex
	buf []byte
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// NewTemporalProcess reserves a port and a state file for a dev server; it
// does not run until Start. The server is killed at the end of the test.
func NewTemporalProcess(t testing.TB) *TemporalProcess {
	t.Helper()
	p := &TemporalProcess{Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), DBFile: filepath.Join(t.TempDir(), "temporal.db"), t: t}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			p.log.mu.Lock()
			t.Logf("temporal log:\n%s", p.log.buf)
			p.log.mu.Unlock()
		}
	})
	return p
}

// Start runs the server and returns once it answers a health check (within
// a minute, or the test fails).
func (p *TemporalProcess) Start() {
	p.t.Helper()
	host, port, err := net.SplitHostPort(p.Addr)
	if err != nil {
		p.t.Fatalf("temporal address: %v", err)
	}
	args := []string{"server", "start-dev", "--ip", host, "--port", port, "--headless",
		"--log-level", "warn", "--db-filename", p.DBFile}
	args = append(args, devstack.TemporalDynamicConfig()...)
	for _, name := range workflows.SearchAttributeNames {
		args = append(args, "--search-attribute", name+"=Keyword")
	}
	cmd := exec.Command(TemporalCLI(p.t), args...)
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start Temporal dev server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()

	c, err := client.NewLazyClient(client.Options{HostPort: p.Addr, Logger: quietTemporalLogger()})
	if err != nil {
		p.t.Fatalf("temporal client: %v", err)
	}
	defer c.Close()
	for deadline := time.Now().Add(time.Minute); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.CheckHealth(ctx, nil)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			p.t.Fatalf("Temporal dev server exited at start (pid %d, %s)", cmd.Process.Pid, cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("Temporal dev server at %s did not answer within a minute: %v", p.Addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Kill SIGKILLs the server (no shutdown code runs) and waits for it to be
// gone; the port is free again when Kill returns.
func (p *TemporalProcess) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	<-done
}
