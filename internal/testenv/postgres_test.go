package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/internal/testenv"
)

// TestPostgresRestart: the test's own server comes back after a crash-like
// stop with what was committed, and a pool reconnects by itself.
func TestPostgresRestart(t *testing.T) {
	ctx := context.Background()
	pg := testenv.Postgres(t)
	pool, err := pgxpool.New(ctx, pg.URL)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
	require.NoError(t, err)

	require.NoError(t, pg.Stop("immediate"))
	_, err = pool.Exec(ctx, "SELECT 1")
	require.Error(t, err, "the server is down")
	require.NoError(t, pg.Start())

	var v int
	testenv.Eventually(t, 10*time.Second, "the pool to reconnect", func() bool {
		return pool.QueryRow(ctx, "SELECT v FROM kept").Scan(&v) == nil
	})
	require.Equal(t, 7, v)
	require.NoError(t, pg.Restart("fast", 100*time.Millisecond))
	testenv.Eventually(t, 10*time.Second, "the pool to reconnect after a fast restart", func() bool {
		return pool.QueryRow(ctx, "SELECT v FROM kept").Scan(&v) == nil
	})
}
