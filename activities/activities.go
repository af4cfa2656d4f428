// Package activities holds every side effect threadbox's workflows perform:
// Daytona calls through the daytona gateway and metadata writes through sqlc.
// Each activity is idempotent (deterministic sandbox names, find-or-create,
// upserts, ledger rows keyed by a dedup key) because Temporal may run it more
// than once.
package activities

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
)

// Activities is registered with the worker as one struct, so every method is
// an activity named after it.
type Activities struct {
	Config  config.Config
	Pool    *pgxpool.Pool
	Queries *db.Queries
	Daytona *daytona.Gateway
	Logger  *slog.Logger
	// Temporal lets the orphan reconciler ask entity workflows what they
	// track; nil disables reconciliation (the worker sets it).
	Temporal client.Client
	// Metrics counts lifecycle transitions and deleted orphans; nil records none.
	Metrics *Metrics
}

// New builds the activities over their dependencies.
func New(cfg config.Config, pool *pgxpool.Pool, gw *daytona.Gateway, log *slog.Logger) *Activities {
	if log == nil {
		log = slog.Default()
	}
	return &Activities{Config: cfg, Pool: pool, Queries: db.New(pool), Daytona: gw, Logger: log}
}
