package auth_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

// holdVerify is a pgx tracer that, once armed, holds the first key lookup
// after PostgreSQL answered it, before the cache sees the answer: a slow
// database (or a paused process) with a real query and a real answer.
type holdVerify struct {
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // closed when a lookup is held
	release chan struct{} // closed to let it go
}

// heldKey marks the context of the lookup being held.
type heldKey struct{}

func (h *holdVerify) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "name: GetActiveAPIKeyByHash") {
		h.mu.Lock()
		hold := h.armed
		h.armed = false
		h.mu.Unlock()
		if hold {
			return context.WithValue(ctx, heldKey{}, true)
		}
	}
	return ctx
}

func (h *holdVerify) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if ctx.Value(heldKey{}) != nil {
		close(h.held)
		<-h.release
	}
}

// A request that arrives more than CacheTTL after a verification query began
// must not take that query's answer: it may predate a revoke by more than the
// bound. Here the first lookup reads the key as valid and is held; the key is
// revoked; a request arriving CacheTTL later (while the first is still in
// flight) is refused, though the first, which arrived before the revoke, is
// answered with what it read.
func TestVerificationOlderThanCacheTTLIsNotShared(t *testing.T) {
	ctx := context.Background()
	_, url := testenv.Database(t)
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	tracer := &holdVerify{held: make(chan struct{}), release: make(chan struct{})}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	store := auth.NewStore(db.New(pool))
	clock := testenv.NewClock(time.Now())
	cache := auth.NewCache(store, nil, clock.Now)
	t.Cleanup(cache.Close)

	key, row, err := store.Create(ctx, "alice", false)
	require.NoError(t, err)
	tracer.mu.Lock()
	tracer.armed = true
	tracer.mu.Unlock()

	first := make(chan error, 1)
	go func() { _, err := cache.Verify(ctx, key); first <- err }()
	<-tracer.held // the first lookup has read the key as valid
	_, err = store.Revoke(ctx, row.ID)
	require.NoError(t, err)

	clock.Add(auth.CacheTTL + time.Millisecond)
	late := make(chan error, 1)
	go func() { _, err := cache.Verify(ctx, key); late <- err }()
	// Give the late request time to join the lookup in flight. (Were it slower
	// than this, it would find nothing in flight and query on its own: the test
	// would pass without showing the join, never fail for want of time.)
	time.Sleep(200 * time.Millisecond)
	close(tracer.release)

	require.NoError(t, <-first, "the request that arrived before the revoke gets what its lookup read")
	require.ErrorIs(t, <-late, auth.ErrInvalidKey, "a request CacheTTL after the revoke is refused")
}
