package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"golang.org/x/sync/errgroup"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/metrics"
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
// to: the migrated database, Temporal and the Daytona gateway. Building it
// once here keeps the three commands from repeating their setup.
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
}

// connect opens the database (applying migrations, as every long-running
// process does at start), dials Temporal and builds the Daytona gateway
// (DAYTONA_API_URL is required outside dev).
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
	pool, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	tc, err := client.DialContext(ctx, client.Options{
		HostPort:       cfg.TemporalAddress,
		Namespace:      cfg.TemporalNamespace,
		Logger:         tlog.NewStructuredLogger(log.With("component", "temporal")),
		MetricsHandler: metrics.NewTemporalHandler(reg, log),
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return &system{cfg: cfg, log: log, pool: pool, temporal: tc, gateway: gw, reg: reg}, nil
}

// openDatabase connects and applies migrations.
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

// Close releases the connections.
func (s *system) Close() {
	s.temporal.Close()
	s.pool.Close()
}

// serveAPI runs the API server until ctx is done.
func (s *system) serveAPI(ctx context.Context) error {
	srv, err := api.New(api.Deps{Config: s.cfg, Pool: s.pool, Temporal: s.temporal, Daytona: s.gateway, Logger: s.log, Registry: s.reg})
	if err != nil {
		return err
	}
	defer srv.Close()
	s.log.InfoContext(ctx, "api listening", "addr", s.cfg.HTTPAddr)
	return srv.ListenAndServe(ctx, s.cfg.HTTPAddr)
}

// runWorker keeps the reconciler's schedule and runs the worker until ctx is
// done.
func (s *system) runWorker(ctx context.Context) error {
	acts, err := newWorkerActivities(s.cfg, s.pool, s.gateway, s.log, s.reg)
	if err != nil {
		return err
	}
	w := worker.New(s.temporal, worker.Options{TaskQueue: s.cfg.TemporalTaskQueue}, acts)
	if err := workflows.EnsureReconcileSchedule(ctx, s.temporal, s.cfg.TemporalTaskQueue, s.cfg.ReconcileInterval.Duration(), s.cfg.ReconcileGrace.Duration()); err != nil {
		if ctx.Err() != nil {
			return nil // shut down before the worker started
		}
		return err
	}
	return worker.Run(ctx, w, s.log)
}

// runWorkerProcess is the worker command: the worker, and its own /metrics
// and /healthz listener (THREADBOX_WORKER_METRICS_ADDR) when set.
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
