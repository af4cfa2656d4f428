package emulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/threadbox/threadbox/internal/shell"
)

const (
	// runMount is where a sandbox's runtime directory (control FIFO, job
	// directories) appears inside its namespace.
	runMount    = "/run/emulator"
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// runtimeStartTimeout bounds how long a namespace may take to come up.
	runtimeStartTimeout = 10 * time.Second
)

// spawnerScript is the first process of a sandbox: it reads requests from
// the control FIFO and starts every command and session shell of the
// sandbox, each in its own session (setsid), so they all share the
// sandbox's processes, loopback network and files like the processes of one
// Daytona container do, and outlive the request that started them. Its
// verbs: "run JOB" starts jobs/JOB/run; "kill JOB" kills that job's process
// group (its launcher wrote the id to jobs/JOB/pid) and removes its
// directory.
const spawnerScript = `R="$1"
cd / || exit 1
exec 3<>"$R/ctl"
while IFS=' ' read -r verb job <&3; do
	case "$job" in ''|*[!A-Za-z0-9_-]*) continue ;; esac
	case "$verb" in
	run) ( setsid /bin/bash "$R/jobs/$job/run" </dev/null >/dev/null 2>&1 3<&- & ) ;;
	kill)
		pg=$(cat "$R/jobs/$job/pid" 2>/dev/null)
		case "$pg" in ''|*[!0-9]*) ;; *) kill -KILL -- "-$pg" 2>/dev/null ;; esac
		rm -rf "$R/jobs/$job" ;;
	esac
done
`

// sandboxRuntime is the running "container" of a started sandbox: with
// bubblewrap, one namespace (user, pid, net, ipc, uts, mount) whose first
// process is the spawner; on the host (UnsafeHostExec), the spawner alone.
// It is created on the first command and killed, with everything it
// started, when the sandbox stops or is deleted.
type sandboxRuntime struct {
	id      string
	log     *slog.Logger
	hostDir string   // the runtime directory on the host
	dir     *os.Root // hostDir; the sandbox can write there, so only through this handle
	view    string   // the runtime directory as the sandbox's processes see it
	// hostPath, on the host, maps a sandbox path to the host path the
	// processes must use; nil in a namespace, where sandbox paths are real.
	hostPath func(sandboxPath string) string

	ready    chan struct{} // closed when start finished (startErr set)
	startErr error
	proc     *exec.Cmd
	exited   chan struct{} // closed when proc ended

	ctlMu sync.Mutex
	ctl   *os.File
	seq   atomic.Uint64

	mu       sync.Mutex
	sessions map[string]*session
}

// runtimeFor returns the sandbox's runtime, starting it when needed. It
// refuses when the sandbox is no longer meant to run (a stop is under way),
// so that a runtime never outlives the stop that killed the previous one.
func (s *Server) runtimeFor(t *tbSandbox) (*sandboxRuntime, error) {
	for {
		s.mu.Lock()
		rt := s.runtimes[t.id]
		if rt == nil {
			sb := s.sandboxes[t.id]
			if sb == nil || !running(sb) || sb.DesiredState != stStarted {
				s.mu.Unlock()
				return nil, errNotRunning
			}
			rt = &sandboxRuntime{id: t.id, log: s.log.With("sandbox", t.id), ready: make(chan struct{}),
				exited: make(chan struct{}), sessions: map[string]*session{}}
			s.runtimes[t.id] = rt
			s.mu.Unlock()
			rt.startErr = s.startRuntime(rt, t)
			close(rt.ready)
			if rt.startErr != nil {
				s.dropRuntime(rt)
				return nil, rt.startErr
			}
			return rt, nil
		}
		s.mu.Unlock()
		<-rt.ready
		if rt.startErr != nil {
			return nil, rt.startErr
		}
		select {
		case <-rt.exited:
			// Its spawner died (e.g. `kill -9 -1` in the sandbox): start afresh.
			s.dropRuntime(rt)
			continue
		default:
			return rt, nil
		}
	}
}

var errNotRunning = errors.New("sandbox is not running")

// dropRuntime forgets and kills rt if it is still the sandbox's runtime.
func (s *Server) dropRuntime(rt *sandboxRuntime) {
	s.mu.Lock()
	if s.runtimes[rt.id] == rt {
		delete(s.runtimes, rt.id)
	}
	s.mu.Unlock()
	rt.stop()
}

// killProcs kills everything running in a sandbox (stop and delete do this):
// its runtime and so every command, background job and session.
func (s *Server) killProcs(sandboxID string) {
	s.mu.Lock()
	rt := s.runtimes[sandboxID]
	delete(s.runtimes, sandboxID)
	s.mu.Unlock()
	if rt != nil {
		rt.stop()
	}
}

// startRuntime prepares the sandbox root and the runtime directory, starts
// the spawner (in bubblewrap unless UnsafeHostExec) and waits until it
// listens on its control FIFO.
func (s *Server) startRuntime(rt *sandboxRuntime, t *tbSandbox) error {
	rt.hostDir = filepath.Join(s.baseDir, "run", t.id)
	if err := os.RemoveAll(rt.hostDir); err != nil {
		return fmt.Errorf("clear runtime directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(rt.hostDir, "jobs"), 0o755); err != nil {
		return fmt.Errorf("create runtime directory: %w", err)
	}
	var err error
	if rt.dir, err = os.OpenRoot(rt.hostDir); err != nil {
		return fmt.Errorf("open runtime directory: %w", err)
	}
	if err := rt.dir.WriteFile("spawner", []byte(spawnerScript), 0o644); err != nil {
		return fmt.Errorf("write spawner: %w", err)
	}
	if err := unix.Mkfifo(filepath.Join(rt.hostDir, "ctl"), 0o600); err != nil {
		return fmt.Errorf("create control fifo: %w", err)
	}

	var cmd *exec.Cmd
	if s.bwrapPath != "" {
		extra, err := prepareRoot(t.fs, mountPaths(t.mounts))
		if err != nil {
			return fmt.Errorf("prepare sandbox root: %w", err)
		}
		rt.view = runMount
		cmd = exec.Command(s.bwrapPath, bwrapArgs(t.rootDir, t.id, filepath.Join(s.baseDir, "identity"),
			rt.hostDir, t.mounts, extra, "/bin/bash", runMount+"/spawner", runMount)...)
	} else {
		s.warnNoIsolation()
		rt.view = rt.hostDir
		roots := map[string]string{"/": t.rootDir}
		mounts := append([]hostMount(nil), t.mounts...)
		rt.hostPath = func(p string) string {
			for _, m := range mounts {
				if p == m.path || strings.HasPrefix(p, m.path+"/") {
					return filepath.Join(m.dir, strings.TrimPrefix(p, m.path))
				}
			}
			return filepath.Join(roots["/"], p)
		}
		cmd = exec.Command("/bin/bash", filepath.Join(rt.hostDir, "spawner"), rt.hostDir)
	}
	cmd.Env = []string{"PATH=" + defaultPath}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sandbox runtime: %w", err)
	}
	rt.proc = cmd
	go func() {
		_ = cmd.Wait()
		close(rt.exited)
	}()

	// The spawner opens the FIFO for reading; until then a non-blocking
	// open for writing fails with ENXIO.
	deadline := time.Now().Add(runtimeStartTimeout)
	for {
		f, err := rt.dir.OpenFile("ctl", os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			rt.ctl = f
			return nil
		}
		if !errors.Is(err, syscall.ENXIO) {
			return fmt.Errorf("open control fifo: %w", err)
		}
		select {
		case <-rt.exited:
			return fmt.Errorf("sandbox runtime exited at start: %s", strings.TrimSpace(stderr.String()))
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("sandbox runtime did not start in time")
		}
	}
}

// stop kills the runtime and everything it started and removes its
// directory. In a namespace, killing bubblewrap ends the namespace's init
// and with it every process inside; on the host, each job's process group
// is killed.
func (rt *sandboxRuntime) stop() {
	<-rt.ready
	if rt.proc != nil {
		if rt.hostPath != nil {
			rt.killHostJobs()
		}
		_ = syscall.Kill(-rt.proc.Process.Pid, syscall.SIGKILL)
		<-rt.exited
	}
	rt.ctlMu.Lock()
	if rt.ctl != nil {
		_ = rt.ctl.Close()
		rt.ctl = nil
	}
	rt.ctlMu.Unlock()
	rt.mu.Lock()
	for _, se := range rt.sessions {
		se.mu.Lock()
		if se.stdin != nil {
			_ = se.stdin.Close()
			se.stdin = nil
		}
		if se.shell != nil {
			se.shell.closeDone()
		}
		se.mu.Unlock()
	}
	rt.sessions = map[string]*session{}
	rt.mu.Unlock()
	if rt.dir != nil {
		_ = rt.dir.Close()
	}
	if rt.hostDir != "" {
		if err := os.RemoveAll(rt.hostDir); err != nil {
			rt.log.Warn("remove runtime directory", "err", err)
		}
	}
}

// killHostJobs kills the process group of every job of a host runtime.
func (rt *sandboxRuntime) killHostJobs() {
	entries, err := os.ReadDir(filepath.Join(rt.hostDir, "jobs"))
	if err != nil {
		return
	}
	for _, e := range entries {
		b, err := rt.dir.ReadFile("jobs/" + e.Name() + "/pid")
		if err != nil {
			continue
		}
		if pg, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pg > 1 {
			_ = syscall.Kill(-pg, syscall.SIGKILL)
		}
	}
}

// alive reports whether the runtime's spawner still runs.
func (rt *sandboxRuntime) alive() bool {
	select {
	case <-rt.exited:
		return false
	default:
		return true
	}
}

// send writes one request line to the spawner.
func (rt *sandboxRuntime) send(verb, jobID string) error {
	rt.ctlMu.Lock()
	defer rt.ctlMu.Unlock()
	if rt.ctl == nil {
		return errNotRunning
	}
	if _, err := rt.ctl.Write([]byte(verb + " " + jobID + "\n")); err != nil {
		return fmt.Errorf("sandbox runtime: %w", err)
	}
	return nil
}

// sandboxPath maps a sandbox path to the path the runtime's processes use.
func (rt *sandboxRuntime) sandboxPath(p string) string {
	if rt.hostPath == nil {
		return p
	}
	return rt.hostPath(p)
}

// job is one process tree started by the spawner, with its directory
// jobs/ID in the runtime directory.
type job struct {
	rt   *sandboxRuntime
	id   string
	rel  string   // "jobs/ID" in rt.dir
	view string   // the same directory as the job sees it
	done *os.File // the "done" FIFO, held open for reading
}

// newJob creates a job directory holding files, the given FIFOs and a "done"
// FIFO the host holds open (so the launcher's final write never blocks),
// writes the launcher built from the job's directory as the job sees it, and
// starts it.
func (rt *sandboxRuntime) newJob(files map[string][]byte, launcher func(view string) string, fifos ...string) (*job, error) {
	id := "j" + strconv.FormatUint(rt.seq.Add(1), 10)
	j := &job{rt: rt, id: id, rel: "jobs/" + id, view: rt.view + "/jobs/" + id}
	if err := rt.dir.Mkdir(j.rel, 0o755); err != nil {
		return nil, fmt.Errorf("create job directory: %w", err)
	}
	fail := func(err error) (*job, error) {
		j.release()
		return nil, err
	}
	for name, content := range files {
		if err := rt.dir.WriteFile(j.rel+"/"+name, content, 0o644); err != nil {
			return fail(fmt.Errorf("write job file: %w", err))
		}
	}
	for _, name := range append(fifos, "done") {
		if err := rt.mkfifo(j.rel, name); err != nil {
			return fail(err)
		}
	}
	f, err := rt.dir.OpenFile(j.rel+"/done", os.O_RDWR, 0)
	if err != nil {
		return fail(fmt.Errorf("open done fifo: %w", err))
	}
	j.done = f
	if err := rt.dir.WriteFile(j.rel+"/run", []byte(launcher(j.view)), 0o644); err != nil {
		return fail(fmt.Errorf("write launcher: %w", err))
	}
	if err := rt.send("run", id); err != nil {
		return fail(err)
	}
	return j, nil
}

// mkfifo creates a FIFO in a directory of the runtime, through its handle.
func (rt *sandboxRuntime) mkfifo(dirRel, name string) error {
	d, err := rt.dir.Open(dirRel)
	if err != nil {
		return fmt.Errorf("open job directory: %w", err)
	}
	defer d.Close()
	if err := unix.Mkfifoat(int(d.Fd()), name, 0o600); err != nil {
		return fmt.Errorf("create fifo %s: %w", name, err)
	}
	return nil
}

var errJobTimeout = errors.New("job timed out")

// wait blocks until the job's launcher reported the end (the command exited
// and every holder of its output closed it), the timeout (0: none) passes
// (errJobTimeout), or the runtime died (errNotRunning).
func (j *job) wait(timeout time.Duration) error {
	done := j.done
	got := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := done.Read(b[:])
		got <- err
	}()
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case err := <-got:
		return err
	case <-expire:
		_ = done.SetReadDeadline(time.Now())
		return errJobTimeout
	case <-j.rt.exited:
		_ = done.SetReadDeadline(time.Now())
		return errNotRunning
	}
}

// kill kills the job's process group; the spawner then removes its directory.
func (j *job) kill() error {
	j.closeDone()
	return j.rt.send("kill", j.id)
}

// release closes the job's FIFO and removes its directory (the job ended).
func (j *job) release() {
	j.closeDone()
	_ = j.rt.dir.RemoveAll(j.rel)
}

func (j *job) closeDone() {
	if j.done != nil {
		_ = j.done.Close()
		j.done = nil
	}
}

// readFile reads a file the job wrote.
func (j *job) readFile(name string) ([]byte, error) {
	return j.rt.dir.ReadFile(j.rel + "/" + name)
}

// sandboxEnv is the environment of a sandbox's processes: the defaults of
// Daytona's image and runner, the sandbox's env, then the request's.
func sandboxEnv(rt *sandboxRuntime, sandboxID string, layers ...map[string]string) map[string]string {
	env := map[string]string{
		"PATH":                  defaultPath,
		"HOME":                  rt.sandboxPath(homeDir),
		"USER":                  sandboxUser,
		"LOGNAME":               sandboxUser,
		"LANG":                  "C.UTF-8",
		"DAYTONA_SANDBOX_ID":    sandboxID,
		"DAYTONA_SANDBOX_USER":  sandboxUser,
		"DAYTONA_SANDBOX_SHELL": "/bin/bash",
	}
	for _, l := range layers {
		for k, v := range l {
			if envNameRe.MatchString(k) {
				env[k] = v
			}
		}
	}
	return env
}

// envNameRe is what an environment variable name may be (compiled once: it
// is matched per variable of every command).
var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// exportLines renders env as sorted `export 'K=V'` lines for a launcher.
func exportLines(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("export " + shell.Quote(k+"="+env[k]) + "\n")
	}
	return b.String()
}

// limitedWriter keeps the first n bytes written (diagnostics of a runtime
// that failed to start).
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
