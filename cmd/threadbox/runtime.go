package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"golang.org/x/sync/errgroup"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/metrics"
	"github.com/threadbox/threadbox/temporalrpc"
	"github.com/threadbox/threadbox/worker"
	"github.com/threadbox/threadbox/workflows"
)

// newLogger builds the process logger from LOG_LEVEL and LOG_FORMAT.
func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// system is what every long-running command (serve, worker, dev) connects
// to: the database, Temporal and the Daytona gateway. Building it once here
// keeps the three commands from repeating their setup.
//
// Nothing here needs a dependency to be up: the pool and the Temporal client
// connect lazily (a request that needs a missing one is answered 503 with
// Retry-After), and migrations are applied in the background, retried until
// PostgreSQL answers (see migrate). A process started before its
// dependencies answers /healthz at once and serves once they are up,
// without a restart.
type system struct {
	cfg      config.Config
	log      *slog.Logger
	pool     *pgxpool.Pool
	temporal client.Client
	gateway  *daytona.Gateway
	// reg holds every metric of the process: the API's, the worker's, the
	// Temporal SDK's and the gateway's (one registry in dev, so the API's
	// /metrics shows the worker's too).
	reg *prometheus.Registry

	// migrations are applied once per process (dev runs serve and worker
	// in one): applied is closed when they are, migrateErr is set before
	// migrateDone closes when they cannot be (a broken migration, not an
	// unreachable database, which is retried).
	migrateOnce sync.Once
	applied     chan struct{}
	migrateDone chan struct{}
	migrateErr  error
}

// connect builds the pool, the (lazy) Temporal client and the Daytona
// gateway (DAYTONA_API_URL is required outside dev). It reaches none of
// them: only a malformed setting fails here.
func connect(ctx context.Context, cfg config.Config, log *slog.Logger) (*system, error) {
	if cfg.DaytonaAPIURL == "" {
		return nil, fmt.Errorf("config: DAYTONA_API_URL: required (threadbox dev sets it to its emulator)")
	}
	reg, err := newRegistry()
	if err != nil {
		return nil, err
	}
	hc, err := instrumentedHTTPClient(reg)
	if err != nil {
		return nil, err
	}
	gw, err := daytona.New(daytona.Config{APIURL: cfg.DaytonaAPIURL, APIKey: cfg.DaytonaAPIKey, Target: cfg.DaytonaTarget, HTTPClient: hc, Logger: log})
	if err != nil {
		return nil, err
	}
	pool, err := db.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	// A lazy client dials on first use and, while Temporal is unreachable,
	// fails each call with serviceerror.Unavailable (503
	// orchestrator_unavailable) and dials again on the next: client.Dial
	// would make the process exit at start instead.
	tc, err := client.NewLazyClient(client.Options{
		HostPort:       cfg.TemporalAddress,
		Namespace:      cfg.TemporalNamespace,
		Logger:         tlog.NewStructuredLogger(log.With("component", "temporal")),
		MetricsHandler: metrics.NewTemporalHandler(reg, log),
		// An API request gives up on an unreachable server after
		// temporalrpc.Grace instead of at its own deadline.
		ConnectionOptions: client.ConnectionOptions{DialOptions: temporalrpc.DialOptions(temporalrpc.Grace)},
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("temporal client for %s: %w", cfg.TemporalAddress, err)
	}
	return &system{cfg: cfg, log: log, pool: pool, temporal: tc, gateway: gw, reg: reg,
		applied: make(chan struct{}), migrateDone: make(chan struct{})}, nil
}

// openDatabase connects and applies migrations, for the one-shot commands
// (apikey, usage), which need the database at once.
func openDatabase(ctx context.Context, cfg config.Config, log *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	n, err := db.Migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if n > 0 {
		log.InfoContext(ctx, "applied migrations", "count", n)
	}
	return pool, nil
}

// Backoff of the waits for a dependency at start: the first retry soon (a
// database starting alongside), then at most every maxRetryWait, so an
// outage costs a log line per attempt, not a flood.
const (
	firstRetryWait = 500 * time.Millisecond
	maxRetryWait   = 10 * time.Second
)

// migrate applies the migrations, retrying while PostgreSQL is unreachable,
// and returns when they are applied (nil), when they cannot be (a failing
// migration: the process should exit, it will not get better) or when ctx
// ends (nil). The first caller runs them; later callers (dev's worker and
// API) wait for that run.
func (s *system) migrate(ctx context.Context) error {
	s.migrateOnce.Do(func() {
		go func() {
			defer close(s.migrateDone)
			s.migrateErr = s.migrateUntilApplied(ctx)
		}()
	})
	select {
	case <-s.migrateDone:
		return s.migrateErr
	case <-ctx.Done():
		return nil
	}
}

func (s *system) migrateUntilApplied(ctx context.Context) error {
	wait := firstRetryWait
	for {
		n, err := db.Migrate(ctx, s.pool)
		if err == nil {
			if n > 0 {
				s.log.InfoContext(ctx, "applied migrations", "count", n)
			}
			close(s.applied)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if !db.Unavailable(err) && !errors.Is(err, driver.ErrBadConn) {
			return err
		}
		s.log.WarnContext(ctx, "database unavailable; migrations wait for it", "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
		wait = min(2*wait, maxRetryWait)
	}
}

// awaitTemporal returns once Temporal answers a health check, or ctx ends
// (false). The worker waits here instead of exiting: its pollers need the
// server, and the reconciler's schedule is written to it.
func (s *system) awaitTemporal(ctx context.Context) bool {
	wait := firstRetryWait
	for {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.temporal.CheckHealth(hctx, nil)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.log.WarnContext(ctx, "Temporal unavailable; the worker waits for it", "addr", s.cfg.TemporalAddress, "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return false
		}
		wait = min(2*wait, maxRetryWait)
	}
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close releases the connections.
func (s *system) Close() {
	s.temporal.Close()
	s.pool.Close()
}

// serveAPI runs the API server until ctx is done. It listens at once; the
// routes that need the database answer 503 database_unavailable until the
// migrations are applied (api.Deps.Migrated), and /readyz says so.
func (s *system) serveAPI(ctx context.Context) error {
	srv, err := api.New(api.Deps{Config: s.cfg, Pool: s.pool, Temporal: s.temporal, Daytona: s.gateway, Logger: s.log, Registry: s.reg, Migrated: s.applied})
	if err != nil {
		return err
	}
	defer srv.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.migrate(gctx) })
	g.Go(func() error {
		s.log.InfoContext(ctx, "api listening", "addr", s.cfg.HTTPAddr)
		return srv.ListenAndServe(gctx, s.cfg.HTTPAddr)
	})
	return g.Wait()
}

// runWorker waits for the database (migrations) and Temporal, keeps the
// reconciler's schedule and runs the worker until ctx is done.
func (s *system) runWorker(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	if !s.awaitTemporal(ctx) {
		return nil // shut down before Temporal answered
	}
	acts, err := newWorkerActivities(s.cfg, s.pool, s.gateway, s.log, s.reg)
	if err != nil {
		return err
	}
	w := worker.New(s.temporal, worker.Options{TaskQueue: s.cfg.TemporalTaskQueue, StopTimeout: s.cfg.ShutdownTimeout}, acts)
	for {
		err := workflows.EnsureReconcileSchedule(ctx, s.temporal, s.cfg.TemporalTaskQueue, s.cfg.ReconcileInterval.Duration(), s.cfg.ReconcileGrace.Duration())
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil // shut down before the worker started
		}
		var unavailable *serviceerror.Unavailable
		if !errors.As(err, &unavailable) {
			return err
		}
		// Temporal went away again between the health check and now.
		if !s.awaitTemporal(ctx) {
			return nil
		}
	}
	return worker.Run(ctx, w, s.log)
}

// runWorkerProcess is the worker command: the worker, and its own /metrics
// and /healthz listener (THREADBOX_WORKER_METRICS_ADDR) when set, which
// answers while the worker waits for its dependencies.
func (s *system) runWorkerProcess(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if s.cfg.WorkerMetricsAddr != "" {
		g.Go(func() error { return metrics.Serve(ctx, s.cfg.WorkerMetricsAddr, s.reg, s.log) })
	}
	g.Go(func() error { return s.runWorker(ctx) })
	return g.Wait()
}

// runCommand is the body of serve and worker: configuration, logger,
// connections, then run.
func runCommand(ctx context.Context, run func(*system, context.Context) error) error {
	cfg, err := config.FromEnvironment()
	if err != nil {
		return err
	}
	log := newLogger(cfg)
	sys, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer sys.Close()
	return run(sys, ctx)
}
