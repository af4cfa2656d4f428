package main

import (
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/metrics"
)

// newRegistry is the Prometheus registry of one process, with the Go runtime
// and process collectors. serve exports it on the API's /metrics, worker on
// THREADBOX_WORKER_METRICS_ADDR, dev (both in one process) on the API's.
func newRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// newWorkerActivities builds the worker's activities with their lifecycle
// counters, and registers the gauges read from PostgreSQL at scrape time
// (sandboxes by state, volume usage): the worker exports them because there
// are fewer workers than API replicas to run the queries.
func newWorkerActivities(cfg config.Config, pool *pgxpool.Pool, gw *daytona.Gateway, log *slog.Logger, reg prometheus.Registerer) (*activities.Activities, error) {
	m, err := activities.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(metrics.NewStateCollector(db.New(pool), cfg.VolumeQuotaBytes(), log)); err != nil {
		return nil, err
	}
	acts := activities.New(cfg, pool, gw, log)
	acts.Metrics = m
	return acts, nil
}

// instrumentedHTTPClient is the gateway's HTTP client: every Daytona call
// timed and its failures counted by operation in reg.
func instrumentedHTTPClient(reg prometheus.Registerer) (*http.Client, error) {
	rt, err := daytona.InstrumentTransport(daytona.NewTransport(), reg)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt}, nil
}
