package db

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies every pending migration and returns how many it applied. It
// is safe to run concurrently from several processes (serve, worker and dev
// all call it at start): goose's session locker takes a PostgreSQL advisory
// lock, so one process migrates and the others find nothing to do.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, dir, goose.WithSessionLocker(locker))
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	res, err := provider.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrations: %w", err)
	}
	return len(res), nil
}

// Connect makes a pool for url without reaching the server: connections are
// made when used, so a process can start (and answer its health checks)
// while PostgreSQL is down, and reports database_unavailable until it is up.
// Only a malformed url fails.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return newPool(ctx, url)
}

// Open connects a pool to url and checks the connection, so a wrong
// DATABASE_URL fails at start with a clear error.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, err := newPool(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	return pool, nil
}
