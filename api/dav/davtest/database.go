package davtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/threadbox/threadbox/db"
)

// Database creates a migrated throwaway database (on the server named by
// THREADBOX_TEST_DATABASE_URL, as internal/testenv does) and drops it after
// the test. It exists so the dav package's tests need only PostgreSQL, not
// the whole API package.
func Database(t testing.TB) *pgxpool.Pool {
	t.Helper()
	adminURL := os.Getenv("THREADBOX_TEST_DATABASE_URL")
	if adminURL == "" {
		adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL at %s (is it running?): %v", adminURL, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "tb_davtest_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	_ = admin.Close(ctx)
	i := strings.LastIndex(adminURL, "/")
	url := adminURL[:i+1] + name
	if j := strings.Index(adminURL[i:], "?"); j >= 0 {
		url += adminURL[i+j:]
	}
	pool, err := db.Open(ctx, url)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		admin, err := pgx.Connect(context.Background(), adminURL)
		if err != nil {
			return
		}
		defer admin.Close(context.Background())
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	if _, err := db.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return pool
}
