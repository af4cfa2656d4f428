package uploadspool_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/uploadspool"
)

// Two replicas' lockers over one database: an upload's lock is exclusive
// across them; a replica waiting for it asks the holder on the other
// replica to let go (tusd's requestUnlock), and gets it once released.
func TestLockerAcrossReplicas(t *testing.T) {
	pool, _ := testenv.Database(t)
	a := uploadspool.NewLocker(pool, 3*time.Second, slog.Default())
	b := uploadspool.NewLocker(pool, 3*time.Second, slog.Default())
	t.Cleanup(func() { a.Close(); b.Close() })
	ctx := context.Background()

	la, err := a.NewLock("u1")
	require.NoError(t, err)
	var asked atomic.Int32
	released := make(chan struct{})
	require.NoError(t, la.Lock(ctx, func() {
		if asked.Add(1) == 1 { // the holder stops its request and lets go
			go func() { require.NoError(t, la.Unlock()); close(released) }()
		}
	}))

	lb, err := b.NewLock("u1")
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, lb.Lock(wctx, func() {}), "B gets the lock once A let go")
	<-released
	require.GreaterOrEqual(t, asked.Load(), int32(1), "A was asked to release")

	// While B holds it, A cannot take it (B does not let go): timeout.
	la2, _ := a.NewLock("u1")
	tctx, tcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer tcancel()
	require.ErrorIs(t, la2.Lock(tctx, func() {}), handler.ErrLockTimeout)
	require.NoError(t, lb.Unlock())

	// Another upload is independent.
	lc, _ := a.NewLock("u2")
	require.NoError(t, lc.Lock(ctx, func() {}))
	require.NoError(t, lc.Unlock())
}

// A replica that dies holding a lock blocks the upload for at most the
// lease; a live holder keeps its lock past the lease by renewing it.
func TestLockerLease(t *testing.T) {
	pool, _ := testenv.Database(t)
	ctx := context.Background()
	// Measured from before the dead holder's row is written: its lease ends a
	// second after that, whatever the load between the two statements.
	start := time.Now()
	_, err := pool.Exec(ctx, `INSERT INTO upload_locks (upload_id, holder, expires_at) VALUES ('dead', 'a crashed replica', now() + interval '1 second')`)
	require.NoError(t, err)
	// A 3s lease is renewed every second: a loaded machine would have to stall
	// the renewals for two seconds to lose it, where a 900ms lease needed 600ms.
	const lease = 3 * time.Second
	l := uploadspool.NewLocker(pool, lease, slog.Default())
	t.Cleanup(l.Close)
	lk, _ := l.NewLock("dead")
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, lk.Lock(wctx, func() {}))
	require.Greater(t, time.Since(start), 900*time.Millisecond, "taken only once the dead holder's lease ended")

	time.Sleep(2*lease + lease/2) // more than two leases: renewals keep it
	other, _ := l.NewLock("dead")
	tctx, tcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer tcancel()
	require.ErrorIs(t, other.Lock(tctx, func() {}), handler.ErrLockTimeout)
	require.NoError(t, lk.Unlock())
}
