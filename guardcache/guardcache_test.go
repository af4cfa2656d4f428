package guardcache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/guardcache"
	"github.com/threadbox/threadbox/internal/testenv"
)

// counter is a read that counts its calls and answers the thread row's
// created_at, or an error for a deleted or missing row.
type counter struct {
	pool   *pgxpool.Pool
	thread string
	n      atomic.Int64
}

func (c *counter) read(ctx context.Context) (string, error) {
	c.n.Add(1)
	var state string
	var created time.Time
	if err := c.pool.QueryRow(ctx, `SELECT state, created_at FROM threads WHERE user_id = 'u' AND thread_id = $1`, c.thread).Scan(&state, &created); err != nil {
		return "", err
	}
	if state == "deleted" {
		return "", errors.New("deleted")
	}
	return created.UTC().Format(time.RFC3339Nano), nil
}

// get asks the cache for the counter's thread and requires a verdict.
func (c *counter) get(t *testing.T, cache *guardcache.Cache) {
	t.Helper()
	_, err := cache.Get(context.Background(), guardcache.Key("u", c.thread), c.read)
	require.NoError(t, err)
}

// cached reports whether a verdict is answered without a read now.
func (c *counter) cached(t *testing.T, cache *guardcache.Cache) bool {
	t.Helper()
	c.get(t, cache)
	n := c.n.Load()
	c.get(t, cache)
	return n == c.n.Load()
}

func setup(t *testing.T, maxStale time.Duration, now func() time.Time) (*pgxpool.Pool, *guardcache.Cache) {
	pool, _ := testenv.Database(t)
	_, err := pool.Exec(context.Background(), `INSERT INTO threads (user_id, thread_id, state) VALUES ('u', 't', 'running'), ('u', 'other', 'running')`)
	require.NoError(t, err)
	c := guardcache.New(pool, guardcache.Options{MaxStale: maxStale, Now: now})
	t.Cleanup(c.Close)
	testenv.Eventually(t, 10*time.Second, "the listener", c.Listening)
	return pool, c
}

func TestCachedUntilNotified(t *testing.T) {
	pool, c := setup(t, time.Hour, nil)
	ctx := context.Background()
	key := guardcache.Key("u", "t")
	rd := &counter{pool: pool, thread: "t"}
	v1, err := c.Get(ctx, key, rd.read)
	require.NoError(t, err)
	v2, err := c.Get(ctx, key, rd.read)
	require.NoError(t, err)
	require.Equal(t, v1, v2)
	require.EqualValues(t, 1, rd.n.Load(), "the second use is answered from the cache")

	// An update that does not change the verdict notifies nothing.
	_, err = pool.Exec(ctx, `UPDATE threads SET state = 'stopped', auto_stop_at = now() WHERE thread_id = 't'`)
	require.NoError(t, err)
	// A delete of another thread forgets only that one: after it was
	// handled, t is still cached.
	other := &counter{pool: pool, thread: "other"}
	_, err = c.Get(ctx, guardcache.Key("u", "other"), other.read)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE threads SET state = 'deleted' WHERE thread_id = 'other'`)
	require.NoError(t, err)
	testenv.Eventually(t, 10*time.Second, "the other thread's delete seen", func() bool {
		_, err := c.Get(ctx, guardcache.Key("u", "other"), other.read)
		return err != nil
	})
	rd.get(t, c)
	require.EqualValues(t, 1, rd.n.Load(), "t's verdict survives other threads' notifications and its own state changes")

	// The delete, made with SQL on another connection, is refused once its
	// notification arrives, although the verdict's bound is an hour.
	_, err = pool.Exec(ctx, `UPDATE threads SET state = 'deleted' WHERE thread_id = 't'`)
	require.NoError(t, err)
	testenv.Eventually(t, 10*time.Second, "the delete refused", func() bool {
		_, err := c.Get(ctx, key, rd.read)
		return err != nil
	})

	// Failures are never cached: the thread created again is seen at once,
	// with its new life.
	_, err = pool.Exec(ctx, `UPDATE threads SET state = 'creating', created_at = now() + interval '1 second' WHERE thread_id = 't'`)
	require.NoError(t, err)
	v3, err := c.Get(ctx, key, rd.read)
	require.NoError(t, err)
	require.NotEqual(t, v1, v3)

	// A row removed altogether notifies too. (The re-create's own
	// notification may arrive after the read above: wait until cached.)
	testenv.Eventually(t, 10*time.Second, "the new life cached", func() bool {
		return rd.cached(t, c)
	})
	_, err = pool.Exec(ctx, `DELETE FROM threads WHERE thread_id = 't'`)
	require.NoError(t, err)
	testenv.Eventually(t, 10*time.Second, "the removed row refused", func() bool {
		_, err := c.Get(ctx, key, rd.read)
		return err != nil
	})
}

// TestMaxStale: without any notification, a verdict is trusted for at most
// MaxStale after the read began (a listener that silently lost its
// connection cannot keep a deleted thread alive longer).
func TestMaxStale(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	pool, c := setup(t, guardcache.MaxStale, clock)
	rd := &counter{pool: pool, thread: "t"}
	rd.get(t, c)
	advance(guardcache.MaxStale - time.Millisecond)
	rd.get(t, c)
	require.EqualValues(t, 1, rd.n.Load())
	advance(time.Millisecond)
	rd.get(t, c)
	require.EqualValues(t, 2, rd.n.Load(), "read again once MaxStale passed")
}

// TestReadRacingANotification: a verdict read before a delete but returned
// after the delete's notification was handled is not cached.
func TestReadRacingANotification(t *testing.T) {
	pool, c := setup(t, time.Hour, nil)
	ctx := context.Background()
	key := guardcache.Key("u", "t")
	rd := &counter{pool: pool, thread: "t"}
	_, err := c.Get(ctx, key, func(ctx context.Context) (string, error) {
		v, err := rd.read(ctx)
		c.Forget(key) // what the listener does when the notification arrives
		return v, err
	})
	require.NoError(t, err)
	rd.get(t, c)
	require.EqualValues(t, 2, rd.n.Load(), "the raced verdict was not stored")
}

// TestListenerLost: while the listener is disconnected nothing is trusted
// (a delete meanwhile would go unnoticed); it reconnects and caches again.
func TestListenerLost(t *testing.T) {
	pool, c := setup(t, time.Hour, nil)
	ctx := context.Background()
	key := guardcache.Key("u", "t")
	rd := &counter{pool: pool, thread: "t"}
	rd.get(t, c)
	var killed int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN '||$1::text`, guardcache.Channel).Scan(&killed))
	require.Equal(t, 1, killed)
	// Deleted while nobody listens: the cache must not answer from before.
	_, err := pool.Exec(ctx, `UPDATE threads SET state = 'deleted' WHERE thread_id = 't'`)
	require.NoError(t, err)
	testenv.Eventually(t, 10*time.Second, "the delete refused", func() bool {
		_, err := c.Get(ctx, key, rd.read)
		return err != nil
	})
	_, err = pool.Exec(ctx, `UPDATE threads SET state = 'running', created_at = now() + interval '1 second' WHERE thread_id = 't'`)
	require.NoError(t, err)
	testenv.Eventually(t, 20*time.Second, "listening again", c.Listening)
	testenv.Eventually(t, 10*time.Second, "cached again after the reconnect", func() bool {
		return rd.cached(t, c)
	})
}
