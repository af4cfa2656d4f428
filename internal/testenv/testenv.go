// Package testenv brings up the real parts of threadbox for integration tests:
// a throwaway PostgreSQL database, the Daytona emulator, a Temporal dev server
// (the CLI binary in .bin/, never downloaded), an in-process worker and the
// API server, with API keys for a user and an admin. Everything is torn down
// by t.Cleanup. Intervals default to seconds so lifecycle tests run quickly.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/devstack"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/temporalrpc"
	"github.com/threadbox/threadbox/worker"
	"github.com/threadbox/threadbox/workflows"
)

// AdminDatabaseURL is the server tests create their databases on; override with
// THREADBOX_TEST_DATABASE_URL.
func AdminDatabaseURL() string {
	if u := os.Getenv("THREADBOX_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Database creates an empty, migrated database for t and drops it afterwards.
func Database(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	pool, url := EmptyDatabase(t)
	if _, err := db.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return pool, url
}

// EmptyDatabase creates a database with no schema for t and drops it afterwards.
func EmptyDatabase(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, AdminDatabaseURL())
	if err != nil {
		t.Fatalf("connecting to PostgreSQL at %s (is it running?): %v", AdminDatabaseURL(), err)
	}
	name := "tb_test_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	_ = admin.Close(ctx)
	url := replaceDatabase(AdminDatabaseURL(), name)
	pool, err := db.Open(ctx, url)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		admin, err := pgx.Connect(context.Background(), AdminDatabaseURL())
		if err != nil {
			return
		}
		defer admin.Close(context.Background())
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return pool, url
}

func replaceDatabase(url, name string) string {
	i := strings.LastIndex(url, "/")
	j := strings.Index(url[i:], "?")
	if j < 0 {
		return url[:i+1] + name
	}
	return url[:i+1] + name + url[i+j:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RepoRoot finds the module root (where go.mod is), so tests in any package
// find .bin/ tools.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// TemporalCLI is the path of the Temporal CLI the tests use. Tests fail (not
// skip) without it: `make tools` installs it.
func TemporalCLI(t testing.TB) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), ".bin", "temporal")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Temporal CLI missing at %s: run `make tools`", p)
	}
	return p
}

// Temporal starts a Temporal dev server for t with threadbox's search
// attributes and returns a client to it.
func Temporal(t testing.TB) (client.Client, string) {
	t.Helper()
	return TemporalAt(t, "")
}

// TemporalAt is Temporal listening on hostPort ("" picks a free port): a
// test that starts a process before its Temporal reserves the port first
// (FreePort) and starts the server there later.
func TemporalAt(t testing.TB, hostPort string) (client.Client, string) {
	t.Helper()
	args := append([]string{"--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"}, devstack.TemporalDynamicConfig()...)
	for _, name := range workflows.SearchAttributeNames {
		args = append(args, "--search-attribute", name+"=Keyword")
	}
	ds, err := testsuite.StartDevServer(context.Background(), testsuite.DevServerOptions{
		ExistingPath: TemporalCLI(t),
		LogLevel:     "error",
		ExtraArgs:    args,
		ClientOptions: &client.Options{
			HostPort:  hostPort,
			Namespace: "default",
			Logger:    quietTemporalLogger(),
			// As threadbox's processes dial it (cmd/threadbox connect).
			ConnectionOptions: client.ConnectionOptions{DialOptions: temporalrpc.DialOptions(temporalrpc.Grace)},
		},
		Stdout: io.Discard,
		Stderr: io.Discard,
	})
	if err != nil {
		t.Fatalf("start Temporal dev server: %v", err)
	}
	t.Cleanup(func() { _ = ds.Stop() })
	return ds.Client(), ds.FrontendHostPort()
}

func quietTemporalLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Options tune an Env.
type Options struct {
	AutoStop      time.Duration // default 3s
	AutoDelete    time.Duration // default 6s
	FilesAutoStop time.Duration // default 3s
	Faults        emulator.Faults
	// Configure may adjust the config before anything starts.
	Configure func(*config.Config)
	// NoWorker leaves the worker stopped (StartWorker starts it).
	NoWorker bool
	// Logger receives component logs; default discards below warn.
	Logger *slog.Logger
}

// Env is a whole threadbox on loopback.
type Env struct {
	Config      config.Config
	Pool        *pgxpool.Pool
	DatabaseURL string
	Emulator    *emulator.Server
	EmulatorURL string
	// Calls counts the emulator's requests and takes faults (Intercept).
	Calls      *Calls
	Gateway    *daytona.Gateway
	Temporal   client.Client
	Activities *activities.Activities
	API        *api.Server
	URL        string // API base URL
	// HTTP is a client for URL that validates every exchange against the
	// OpenAPI document (see APIValidator); violations fail the test.
	HTTP     *http.Client
	UserID   string
	UserKey  string
	AdminKey string
	Logger   *slog.Logger

	t      testing.TB
	worker sdkworker.Worker
}

// New starts every part and registers their teardown with t.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.AutoStop == 0 {
		opts.AutoStop = 3 * time.Second
	}
	if opts.AutoDelete == 0 {
		opts.AutoDelete = 6 * time.Second
	}
	if opts.FilesAutoStop == 0 {
		opts.FilesAutoStop = 3 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	e := &Env{t: t, Logger: log}
	e.Pool, e.DatabaseURL = Database(t)

	emu, _, emuURL, calls := Emulator(t, opts.Faults, log)
	e.Emulator, e.EmulatorURL, e.Calls = emu, emuURL, calls

	tc, addr := Temporal(t)
	e.Temporal = tc

	cfg, err := config.Load("", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.DaytonaAPIURL = emuURL + "/api"
	cfg.DaytonaAPIKey = "test-key"
	cfg.DatabaseURL = e.DatabaseURL
	cfg.TemporalAddress = addr
	cfg.TemporalTaskQueue = "threadbox-test-" + randomHex(4)
	cfg.AutoStopInterval = config.Interval(opts.AutoStop)
	cfg.AutoDeleteInterval = config.Interval(opts.AutoDelete)
	cfg.FilesAutoStopInterval = config.Interval(opts.FilesAutoStop)
	cfg.UploadDir = t.TempDir()
	// The suites and benchmarks ask more of one user than a deployment's
	// defaults allow; the limits stay on (so every cold ensure goes through
	// admission) but out of the way. Admission tests configure their own.
	cfg.MaxThreadsPerUser, cfg.MaxRunningSandboxesPerUser, cfg.MaxRunningSandboxes = 10_000, 10_000, 10_000
	cfg.RateLimit, cfg.RateBurst = 1e6, 1e6
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	e.Config = cfg

	gw, err := daytona.New(daytona.Config{APIURL: cfg.DaytonaAPIURL, APIKey: cfg.DaytonaAPIKey, Logger: log})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	e.Gateway = gw
	e.Activities = activities.New(cfg, e.Pool, gw, log)
	if !opts.NoWorker {
		e.StartWorker()
	}

	srv, err := api.New(api.Deps{Config: cfg, Pool: e.Pool, Temporal: tc, Daytona: gw, Logger: log})
	if err != nil {
		t.Fatalf("api: %v", err)
	}
	apiSrv := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { apiSrv.Close(); srv.Close() })
	e.API, e.URL = srv, apiSrv.URL
	e.HTTP = APIClient(t)

	e.UserID = "user-" + randomHex(3)
	e.UserKey = e.Key(e.UserID, false)
	e.AdminKey = e.Key("admin-"+randomHex(3), true)
	return e
}

// Replica starts another API server over the same database, Temporal and
// Daytona, as a second `threadbox serve` would be: its own caches, lock
// store handle and upload handler. configure may adjust its configuration
// (nil: the same as the first). It returns the replica's base URL.
func (e *Env) Replica(configure func(*config.Config)) string {
	e.t.Helper()
	return e.ReplicaDeps(func(d *api.Deps) {
		if configure != nil {
			configure(&d.Config)
		}
	})
}

// ReplicaDeps is Replica with the whole of the replica's api.Deps to
// adjust (its configuration included).
func (e *Env) ReplicaDeps(configure func(*api.Deps)) string {
	e.t.Helper()
	d := api.Deps{Config: e.Config, Pool: e.Pool, Temporal: e.Temporal, Daytona: e.Gateway, Logger: e.Logger}
	if configure != nil {
		configure(&d)
	}
	srv, err := api.New(d)
	if err != nil {
		e.t.Fatalf("api replica: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	e.t.Cleanup(func() { hs.Close(); srv.Close() })
	return hs.URL
}

// Key creates an API key for user.
func (e *Env) Key(user string, admin bool) string {
	e.t.Helper()
	key, _, err := auth.NewStore(db.New(e.Pool)).Create(context.Background(), user, admin)
	if err != nil {
		e.t.Fatalf("api key: %v", err)
	}
	return key
}

// StartWorker starts an in-process worker (again, after StopWorker).
func (e *Env) StartWorker() {
	e.t.Helper()
	if e.worker != nil {
		return
	}
	w := worker.New(e.Temporal, worker.Options{TaskQueue: e.Config.TemporalTaskQueue}, e.Activities)
	if err := w.Start(); err != nil {
		e.t.Fatalf("worker: %v", err)
	}
	e.worker = w
	e.t.Cleanup(e.StopWorker)
}

// StopWorker stops the in-process worker at once (the SDK's Stop: running
// activities are abandoned and retried by the next worker after their
// heartbeat timeout). It is not a crash; tests of a killed process run the
// binary (cmd/threadbox, tests/fault).
func (e *Env) StopWorker() {
	if e.worker != nil {
		e.worker.Stop()
		e.worker = nil
	}
}

// FreePort returns a free TCP port on loopback.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond every 50ms until it is true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// Clock is a settable clock for code that takes a `now func() time.Time`
// (caches, limiters): tests move it instead of sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
