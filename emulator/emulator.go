package emulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Options configures a Server. The zero value is a usable in-memory emulator.
type Options struct {
	// StateDir persists state (JSON plus directories) so a restart keeps
	// sandboxes, volumes, snapshots and their files. Empty means in-memory
	// state with a temporary directory for files, removed on Close.
	StateDir string
	// APIKey, when non-empty, is required as "Authorization: Bearer <key>" on
	// /api and /toolbox, like Daytona's auth guard and proxy.
	APIKey string
	// PublicURL is the externally visible base URL (e.g. http://127.0.0.1:3986);
	// toolboxProxyUrl is PublicURL+"/toolbox". Empty derives it from the
	// request's Host header.
	PublicURL string
	// Faults injects latency and errors for reliability tests.
	Faults Faults
	// CronInterval is the tick of the auto-stop/archive/delete crons
	// (Daytona: 10s, the default). Tests use ~100ms.
	CronInterval time.Duration
	// TimeUnit is what one "minute" of the auto-* intervals means (default
	// time.Minute), so tests can run the crons in seconds.
	TimeUnit time.Duration
	// TransitionDelay is how long each state transition (create, start, stop,
	// delete, snapshot, volume and snapshot readiness) takes. Default 100ms.
	TransitionDelay time.Duration
	// RestoreDelay is how long a start from archived leaves the sandbox
	// archived with desiredState started (Daytona: until a runner is picked
	// and the backup checked, which can take minutes) before it restores.
	// Default TransitionDelay.
	RestoreDelay time.Duration
	// Activity is how activity reaches lastActivityAt (see ActivityTimings).
	Activity ActivityTimings
	// SnapshotIdleLimit is how long an active snapshot may go unused before it
	// becomes inactive (Daytona: 14 days; default 14 days of TimeUnit).
	SnapshotIdleLimit time.Duration
	// Limits are the organisation's quotas and suspension (see Limits).
	Limits Limits
	// Logger receives the emulator's logs; nil means slog.Default().
	Logger *slog.Logger
	// UnsafeHostExec runs sandbox commands directly on the host, as the
	// user running the emulator, with their working directory mapped into
	// the sandbox directory: no isolation at all. Without it, New requires a
	// working bubblewrap and fails with the command that installs it.
	UnsafeHostExec bool
}

// setDefaults fills the zero fields of Options.
func (o *Options) setDefaults() {
	if o.CronInterval <= 0 {
		o.CronInterval = 10 * time.Second
	}
	if o.TimeUnit <= 0 {
		o.TimeUnit = time.Minute
	}
	if o.TransitionDelay <= 0 {
		o.TransitionDelay = 100 * time.Millisecond
	}
	if o.RestoreDelay <= 0 {
		o.RestoreDelay = o.TransitionDelay
	}
	if o.SnapshotIdleLimit <= 0 {
		o.SnapshotIdleLimit = 14 * 24 * 60 * o.TimeUnit
	}
	o.Activity = o.Activity.withDefaults(o.TimeUnit)
}

// Server is a running emulator. It is safe for concurrent use.
type Server struct {
	opts      Options
	log       *slog.Logger
	baseDir   string
	ownsDir   bool
	persist   bool
	bwrapPath string // empty when commands run on the host
	faults    *faultInjector

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	sandboxes map[string]*sandboxRec
	volumes   map[string]*volumeRec
	snapshots map[string]*snapshotRec
	changed   chan struct{}              // closed and replaced on every state change
	runtimes  map[string]*sandboxRuntime // running sandboxes' namespaces, by sandbox id
	limits    Limits
	activity  map[string]*activityState

	hostWarnOnce sync.Once
	handler      http.Handler
	closeOnce    sync.Once

	schedMu sync.Mutex // guards closed against wg.Add after Close's Wait
	closed  bool
}

// New creates an emulator, loading persisted state when opts.StateDir is set.
// ctx bounds nothing but the background workers' parent context; Close stops them.
func New(ctx context.Context, opts Options) (*Server, error) {
	opts.setDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.Default().With("component", "daytona-emulator")
	}
	s := &Server{
		opts:      opts,
		log:       log,
		sandboxes: map[string]*sandboxRec{},
		volumes:   map[string]*volumeRec{},
		snapshots: map[string]*snapshotRec{},
		changed:   make(chan struct{}),
		runtimes:  map[string]*sandboxRuntime{},
		faults:    newFaultInjector(opts.Faults),
		limits:    opts.Limits,
		activity:  map[string]*activityState{},
	}
	if opts.UnsafeHostExec {
		s.warnNoIsolation()
	} else {
		bw, err := detectBwrap(ctx)
		if err != nil {
			return nil, err
		}
		s.bwrapPath = bw
	}
	if opts.StateDir == "" {
		dir, err := os.MkdirTemp("", "daytona-emulator-")
		if err != nil {
			return nil, fmt.Errorf("emulator: temp dir: %w", err)
		}
		s.baseDir, s.ownsDir = dir, true
	} else {
		abs, err := filepath.Abs(opts.StateDir)
		if err != nil {
			return nil, fmt.Errorf("emulator: state dir: %w", err)
		}
		s.baseDir, s.persist = abs, true
	}
	fail := func(err error) (*Server, error) {
		if s.ownsDir {
			_ = os.RemoveAll(s.baseDir)
		}
		return nil, err
	}
	for _, d := range []string{"sandboxes", "volumes", "snapshots", "uploads", "run"} {
		if err := os.MkdirAll(filepath.Join(s.baseDir, d), 0o755); err != nil {
			return fail(fmt.Errorf("emulator: create %s: %w", d, err))
		}
	}
	if err := identityFiles(filepath.Join(s.baseDir, "identity")); err != nil {
		return fail(fmt.Errorf("emulator: %w", err))
	}
	if s.persist {
		if err := s.load(); err != nil {
			return fail(err)
		}
	}
	if s.faults.enabled() || opts.Faults.SlowCreate > 0 || opts.Faults.SandboxErrorRate > 0 {
		f := opts.Faults
		s.log.Info("fault injection active", "seed", s.faults.seed, "latency", f.Latency,
			"fail5xx", f.Fail5xxRate, "fail429", f.Fail429Rate, "fail409", f.Fail409Rate, "slowCreate", f.SlowCreate,
			"sandboxErrorRate", f.SandboxErrorRate, "sandboxErrorRecoverable", f.SandboxErrorRecoverable)
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.handler = s.routes()
	s.wg.Add(1)
	go s.cronLoop()
	return s, nil
}

// IsolationActive reports whether commands run inside bubblewrap namespaces
// (false only with UnsafeHostExec).
func (s *Server) IsolationActive() bool { return s.bwrapPath != "" }

// Handler returns the HTTP handler serving /health, /api and /toolbox.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops background work, kills running commands and, for an
// in-memory emulator, removes its temporary directory.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.schedMu.Lock()
		s.closed = true
		s.schedMu.Unlock()
		s.cancel()
		s.mu.Lock()
		ids := make([]string, 0, len(s.runtimes))
		for id := range s.runtimes {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		for _, id := range ids {
			s.killProcs(id)
		}
		s.wg.Wait()
		s.mu.Lock()
		if s.persist {
			err = s.saveLocked()
		}
		s.mu.Unlock()
		if s.ownsDir {
			if rerr := os.RemoveAll(s.baseDir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("emulator: remove temp dir: %w", rerr))
			}
		}
	})
	return err
}

// Run serves the emulator on addr until ctx is done; `threadbox emulator`
// calls it (default address 127.0.0.1:3986).
func Run(ctx context.Context, addr string, opts Options) error {
	s, err := New(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: listen %s: %w", addr, err)
	}
	s.log.Info("daytona emulator listening",
		"addr", ln.Addr().String(),
		"api", "http://"+ln.Addr().String()+"/api",
		"isolation", s.IsolationActive(),
		"stateDir", s.opts.StateDir)
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("emulator: serve: %w", err)
	case <-ctx.Done():
	}
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		return fmt.Errorf("emulator: shutdown: %w", err)
	}
	return nil
}

// schedule runs fn after d unless the server is closed first.
func (s *Server) schedule(d time.Duration, fn func()) {
	s.schedMu.Lock()
	if s.closed {
		s.schedMu.Unlock()
		return
	}
	s.wg.Add(1)
	s.schedMu.Unlock()
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fn()
		case <-s.ctx.Done():
		}
	}()
}

// notifyLocked wakes everyone waiting for a state change. Caller holds s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until cond (evaluated under s.mu) is true, the timeout
// passes or ctx ends. It returns whether cond became true.
func (s *Server) waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		case <-s.ctx.Done():
			return false
		}
	}
}
