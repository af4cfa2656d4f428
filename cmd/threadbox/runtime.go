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

	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/metrics"
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

// openDatabase connects and applies migrations, as every long-running process
// does at start.
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

// dialTemporal connects to the Temporal frontend; the SDK's client and worker
// metrics go to reg.
func dialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (client.Client, error) {
	c, err := client.DialContext(ctx, client.Options{
		HostPort:       cfg.TemporalAddress,
		Namespace:      cfg.TemporalNamespace,
		Logger:         tlog.NewStructuredLogger(log.With("component", "temporal")),
		MetricsHandler: metrics.NewTemporalHandler(reg, log),
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// newGateway builds the Daytona gateway, its calls measured in reg;
// DAYTONA_API_URL is required outside dev.
func newGateway(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (*daytona.Gateway, error) {
	if cfg.DaytonaAPIURL == "" {
		return nil, fmt.Errorf("config: DAYTONA_API_URL: required (threadbox dev sets it to its emulator)")
	}
	hc, err := instrumentedHTTPClient(reg)
	if err != nil {
		return nil, err
	}
	return daytona.New(daytona.Config{APIURL: cfg.DaytonaAPIURL, APIKey: cfg.DaytonaAPIKey, Target: cfg.DaytonaTarget, HTTPClient: hc, Logger: log})
}
