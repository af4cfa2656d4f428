package main

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/threadbox/threadbox/config"
)

// environmentDatabase opens (and migrates) the database the environment
// names, for the one-shot commands that only need PostgreSQL (apikey,
// usage); the caller closes the pool.
func environmentDatabase(ctx context.Context) (*pgxpool.Pool, error) {
	cfg, err := config.FromEnvironment()
	if err != nil {
		return nil, err
	}
	return openDatabase(ctx, cfg, newLogger(cfg))
}
