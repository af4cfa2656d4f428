package db_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

// Unavailable is what turns a database outage into 503 instead of 500, so
// it is checked against real failures: a server that is not there, a
// session the server ends (pg_terminate_backend sends 57P01, as a shutdown
// does), a connection cut under a query; and against what must stay a 500
// or a 4xx: a query PostgreSQL refused, a caller that gave up, an EOF that
// did not come from the database.
func TestUnavailableRecognisesRealConnectionFailures(t *testing.T) {
	ctx := context.Background()
	pool, url := testenv.Database(t)

	proxy := testenv.NewProxy(t, hostOf(t, url))
	dead, err := db.Connect(ctx, withHost(t, url, proxy.Addr))
	require.NoError(t, err)
	t.Cleanup(dead.Close)
	err = dead.Ping(ctx)
	require.Error(t, err)
	require.True(t, db.Unavailable(err), "nothing listens: %v", err)

	proxy.Start()
	cut, err := db.Connect(ctx, withHost(t, url, proxy.Addr))
	require.NoError(t, err)
	t.Cleanup(cut.Close)
	errc := make(chan error, 1)
	go func() { _, err := cut.Exec(ctx, "SELECT pg_sleep(30)"); errc <- err }()
	time.Sleep(300 * time.Millisecond)
	proxy.Stop()
	err = <-errc
	require.Error(t, err)
	require.True(t, db.Unavailable(err), "connection cut under a query: %v", err)

	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	var pid int
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	_, err = pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT 1")
	require.Error(t, err)
	require.True(t, db.Unavailable(err), "session ended by the server: %v", err)

	_, err = pool.Exec(ctx, "SELECT * FROM no_such_table")
	require.Error(t, err)
	require.False(t, db.Unavailable(err), "a refused query is not an outage: %v", err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = pool.Exec(cctx, "SELECT 1")
	require.Error(t, err)
	require.False(t, db.Unavailable(err), "a caller that gave up: %v", err)
	require.False(t, db.Unavailable(fmt.Errorf("decoding body: %w", io.ErrUnexpectedEOF)), "an EOF from elsewhere")
	require.True(t, db.Unavailable(fmt.Errorf("x: %w", db.ErrUnavailable)))
	require.False(t, db.Unavailable(errors.New("internal")))
}

// RetryRead retries a read once when its connection was lost, and then the
// pool hands out a live connection: a terminated backend costs nothing.
func TestRetryReadSurvivesATerminatedBackend(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Database(t)
	for range 3 { // several connections in the pool, all about to die
		_, err := pool.Exec(ctx, "SELECT 1")
		require.NoError(t, err)
	}
	admin, err := pgx.Connect(ctx, testenv.AdminDatabaseURL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	var name string
	require.NoError(t, pool.QueryRow(ctx, "SELECT current_database()").Scan(&name))
	var n int
	require.NoError(t, admin.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1", name).Scan(&n))
	require.Positive(t, n)
	calls := 0
	v, err := db.RetryRead(ctx, func(ctx context.Context) (int, error) {
		calls++
		var one int
		err := pool.QueryRow(ctx, "SELECT 1").Scan(&one)
		return one, err
	})
	require.NoError(t, err)
	require.Equal(t, 1, v)
	require.LessOrEqual(t, calls, 2)
	t.Logf("read tries: %d (2: the first met a dead connection)", calls)
}

func hostOf(t *testing.T, databaseURL string) string {
	t.Helper()
	u, err := url.Parse(databaseURL)
	require.NoError(t, err)
	return u.Host
}

func withHost(t *testing.T, databaseURL, host string) string {
	t.Helper()
	u, err := url.Parse(databaseURL)
	require.NoError(t, err)
	u.Host = host
	return u.String()
}
