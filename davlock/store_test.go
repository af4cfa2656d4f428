package davlock_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/davlock"
	"github.com/threadbox/threadbox/internal/testenv"
)

// twoStores are two replicas' lock stores over one database.
func twoStores(t *testing.T) (*davlock.Store, *davlock.Store) {
	t.Helper()
	pool, _ := testenv.Database(t)
	return &davlock.Store{Pool: pool}, &davlock.Store{Pool: pool}
}

var ctx = context.Background()

func lock(root string, zeroDepth, shared bool) davlock.Lock {
	return davlock.Lock{Root: root, ZeroDepth: zeroDepth, Shared: shared, Timeout: time.Minute, OwnerXML: "<D:href>me</D:href>"}
}

// A lock taken through one replica conflicts with, and is usable and
// removable through, another.
func TestLockSharedBetweenReplicas(t *testing.T) {
	a, b := twoStores(t)
	now := time.Now()
	l, err := a.Create(ctx, "u", now, lock("/doc.txt", true, false))
	require.NoError(t, err)
	require.Regexp(t, `^urn:uuid:[0-9a-f-]{36}$`, l.Token)

	_, err = b.Create(ctx, "u", now, lock("/doc.txt", true, false))
	require.ErrorIs(t, err, davlock.ErrLocked, "replica B sees A's lock")
	_, err = b.Acquire(ctx, "u", now, []davlock.Target{{Path: "/doc.txt"}}, nil)
	require.ErrorIs(t, err, davlock.ErrLocked, "a write without the token is refused on B")
	g, err := b.Acquire(ctx, "u", now, []davlock.Target{{Path: "/doc.txt"}}, []string{l.Token})
	require.NoError(t, err, "a write with the token goes through on B")
	g.Release()

	got, err := b.Covering(ctx, "u", now, "/doc.txt")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, l.Token, got[0].Token)
	require.Equal(t, "<D:href>me</D:href>", got[0].OwnerXML)

	require.NoError(t, b.Unlock(ctx, "u", now, l.Token, "/doc.txt"))
	_, err = a.Acquire(ctx, "u", now, []davlock.Target{{Path: "/doc.txt"}}, nil)
	require.NoError(t, err, "unlocked through B, A writes freely")
	require.ErrorIs(t, a.Unlock(ctx, "u", now, l.Token, "/doc.txt"), davlock.ErrNoSuchLock)
}

// Another user's same path is not locked; tokens are scoped to their user.
func TestLocksPerUser(t *testing.T) {
	a, b := twoStores(t)
	now := time.Now()
	l, err := a.Create(ctx, "alice", now, lock("/f", true, false))
	require.NoError(t, err)
	_, err = b.Create(ctx, "bob", now, lock("/f", true, false))
	require.NoError(t, err)
	require.ErrorIs(t, b.Unlock(ctx, "bob", now, l.Token, "/f"), davlock.ErrNoSuchLock)
	_, err = b.Refresh(ctx, "bob", now, l.Token, "/f", time.Minute)
	require.ErrorIs(t, err, davlock.ErrNoSuchLock)
}

// Timeouts: a lock ends at its timeout unless refreshed; a refresh counts
// from its own moment and must be addressed within the lock's scope.
func TestLockTimeoutAndRefresh(t *testing.T) {
	s, _ := twoStores(t)
	t0 := time.Now()
	l, err := s.Create(ctx, "u", t0, lock("/dir", false, false))
	require.NoError(t, err)
	require.Equal(t, t0.Add(time.Minute), l.ExpiresAt)

	_, err = s.Refresh(ctx, "u", t0.Add(30*time.Second), l.Token, "/elsewhere", time.Minute)
	require.ErrorIs(t, err, davlock.ErrNoSuchLock, "a refresh outside the lock's scope")
	r, err := s.Refresh(ctx, "u", t0.Add(30*time.Second), l.Token, "/dir/sub/file", 2*time.Minute)
	require.NoError(t, err, "an indirect refresh through a member of an infinite lock")
	require.Equal(t, t0.Add(150*time.Second), r.ExpiresAt)
	require.Equal(t, 2*time.Minute, r.Timeout)

	_, err = s.Acquire(ctx, "u", t0.Add(149*time.Second), []davlock.Target{{Path: "/dir/x"}}, nil)
	require.ErrorIs(t, err, davlock.ErrLocked, "still live just before its refreshed end")
	g, err := s.Acquire(ctx, "u", t0.Add(150*time.Second), []davlock.Target{{Path: "/dir/x"}}, nil)
	require.NoError(t, err, "expired at its refreshed end")
	g.Release()
	_, err = s.Refresh(ctx, "u", t0.Add(151*time.Second), l.Token, "/dir", time.Minute)
	require.ErrorIs(t, err, davlock.ErrNoSuchLock, "an expired lock cannot be refreshed")
}

// Depth: an infinite lock covers its members, a zero-depth one only itself;
// an infinite lock cannot be taken over a locked member; a tree write (DELETE,
// MOVE) needs the tokens of locks below it.
func TestLockDepth(t *testing.T) {
	s, _ := twoStores(t)
	now := time.Now()
	coll, err := s.Create(ctx, "u", now, lock("/c", false, false))
	require.NoError(t, err)
	_, err = s.Create(ctx, "u", now, lock("/c/member", true, false))
	require.ErrorIs(t, err, davlock.ErrLocked, "a member of an infinite lock")
	_, err = s.Acquire(ctx, "u", now, []davlock.Target{{Path: "/c/new"}}, nil)
	require.ErrorIs(t, err, davlock.ErrLocked)
	g, err := s.Acquire(ctx, "u", now, []davlock.Target{{Path: "/c/new"}}, []string{coll.Token})
	require.NoError(t, err)
	g.Release()

	zero, err := s.Create(ctx, "u", now, lock("/z", true, false))
	require.NoError(t, err)
	member, err := s.Create(ctx, "u", now, lock("/z/member", true, false))
	require.NoError(t, err, "a zero-depth lock leaves members free")
	_, err = s.Create(ctx, "u", now, lock("/", false, false))
	require.ErrorIs(t, err, davlock.ErrLocked, "an infinite lock over locked members")

	g, err = s.Acquire(ctx, "u", now, []davlock.Target{{Path: "/z/other"}}, nil)
	require.NoError(t, err, "a zero-depth lock does not cover its members")
	g.Release()
	_, err = s.Acquire(ctx, "u", now, []davlock.Target{{Path: "/z", Tree: true}}, []string{zero.Token})
	require.ErrorIs(t, err, davlock.ErrLocked, "deleting /z needs the member's token too")
	g, err = s.Acquire(ctx, "u", now, []davlock.Target{{Path: "/z", Tree: true}}, []string{zero.Token, member.Token})
	require.NoError(t, err)
	g.Release()
}

// Shared locks: several may be taken on one resource, none alongside an
// exclusive one, and each holder may write with its own token.
func TestSharedLocks(t *testing.T) {
	s, _ := twoStores(t)
	now := time.Now()
	s1, err := s.Create(ctx, "u", now, lock("/s", true, true))
	require.NoError(t, err)
	s2, err := s.Create(ctx, "u", now, lock("/s", true, true))
	require.NoError(t, err, "a second shared lock")
	_, err = s.Create(ctx, "u", now, lock("/s", true, false))
	require.ErrorIs(t, err, davlock.ErrLocked, "no exclusive lock beside shared ones")
	_, err = s.Acquire(ctx, "u", now, []davlock.Target{{Path: "/s"}}, nil)
	require.ErrorIs(t, err, davlock.ErrLocked, "a write presenting no token")
	for _, tok := range []string{s1.Token, s2.Token} {
		g, err := s.Acquire(ctx, "u", now, []davlock.Target{{Path: "/s"}}, []string{tok})
		require.NoError(t, err, "a shared holder writes with its own token")
		g.Release()
	}
	x, err := s.Create(ctx, "u", now, lock("/x", true, false))
	require.NoError(t, err)
	_, err = s.Create(ctx, "u", now, lock("/x", true, true))
	require.ErrorIs(t, err, davlock.ErrLocked, "no shared lock beside an exclusive one")
	require.NoError(t, s.Unlock(ctx, "u", now, x.Token, "/x"))
}

// A lock a write presented is held until the write ends: another write with
// the same token, a refresh and an UNLOCK meanwhile are refused, on any
// replica; a write without an If header holds a transient lock that LOCKs
// and other writes see.
func TestHoldsAcrossReplicas(t *testing.T) {
	a, b := twoStores(t)
	now := time.Now()
	short := lock("/h", true, false)
	short.Timeout = 2 * time.Second
	l, err := a.Create(ctx, "u", now, short)
	require.NoError(t, err)
	g, err := a.Acquire(ctx, "u", now, []davlock.Target{{Path: "/h"}}, []string{l.Token})
	require.NoError(t, err)
	_, err = b.Acquire(ctx, "u", now, []davlock.Target{{Path: "/h"}}, []string{l.Token})
	require.ErrorIs(t, err, davlock.ErrHeld)
	_, err = b.Refresh(ctx, "u", now, l.Token, "/h", time.Minute)
	require.ErrorIs(t, err, davlock.ErrHeld)
	require.ErrorIs(t, b.Unlock(ctx, "u", now, l.Token, "/h"), davlock.ErrHeld)
	_, err = b.Acquire(ctx, "u", now.Add(davlock.DefaultLease-time.Second), []davlock.Target{{Path: "/h"}}, nil)
	require.ErrorIs(t, err, davlock.ErrLocked, "a held lock does not expire (its timeout is 2 s) while the hold's lease runs")
	g.Release()
	require.NoError(t, b.Unlock(ctx, "u", now, l.Token, "/h"), "released, it can be unlocked")

	w, err := a.Acquire(ctx, "u", now, []davlock.Target{{Path: "/w"}}, nil)
	require.NoError(t, err)
	_, err = b.Create(ctx, "u", now, lock("/w", true, false))
	require.ErrorIs(t, err, davlock.ErrLocked, "a LOCK during another replica's write")
	_, err = b.Acquire(ctx, "u", now, []davlock.Target{{Path: "/w"}}, nil)
	require.ErrorIs(t, err, davlock.ErrLocked, "two writers of one resource")
	w2, err := a.Acquire(ctx, "u", now, []davlock.Target{{Path: "/"}, {Path: "/w", Tree: true}}, w.Tokens())
	require.NoError(t, err, "the request's own transient lock counts as presented")
	w2.Release()
	w.Release()
	_, err = b.Create(ctx, "u", now, lock("/w", true, false))
	require.NoError(t, err, "after the write")
}

// A replica that dies mid-write leaves nothing behind past the lease; a
// live request renews its lease.
func TestLeases(t *testing.T) {
	pool, _ := testenv.Database(t)
	// A 3s lease is renewed every second: a loaded machine would have to stall
	// the renewals for two seconds to lose it, where a 900ms lease needed 600ms.
	const lease = 3 * time.Second
	s := &davlock.Store{Pool: pool, Lease: lease}
	t0 := time.Now()
	_, err := s.Acquire(ctx, "u", t0, []davlock.Target{{Path: "/crash"}}, nil) // never released: a crash
	require.NoError(t, err)
	_, err = s.Create(ctx, "u", t0.Add(lease-100*time.Millisecond), lock("/crash", true, false))
	require.ErrorIs(t, err, davlock.ErrLocked)
	_, err = s.Create(ctx, "u", t0.Add(lease+time.Millisecond), lock("/crash", true, false))
	require.NoError(t, err, "the dead request's lease ended")

	g, err := s.Acquire(ctx, "u", time.Now(), []davlock.Target{{Path: "/long"}}, nil)
	require.NoError(t, err)
	defer g.Release()
	time.Sleep(lease + lease/2) // longer than the lease: renewals keep it
	_, err = s.Create(ctx, "u", time.Now(), lock("/long", true, false))
	require.ErrorIs(t, err, davlock.ErrLocked, "a running write's lease is renewed")
}

// At most MaxPerUser live locks per user: an unlock or an expiry frees a
// slot, transient locks do not count, another user is not affected.
func TestLocksPerUserBounded(t *testing.T) {
	pool, _ := testenv.Database(t)
	s := &davlock.Store{Pool: pool, MaxPerUser: 5}
	now := time.Now()
	var first davlock.Lock
	for i := range 5 {
		l, err := s.Create(ctx, "a", now, lock(fmt.Sprintf("/f%d", i), true, false))
		require.NoError(t, err)
		if i == 0 {
			first = l
		}
	}
	_, err := s.Create(ctx, "a", now, lock("/over", true, false))
	require.ErrorIs(t, err, davlock.ErrTooManyLocks)
	_, err = s.Acquire(ctx, "a", now, []davlock.Target{{Path: "/w"}}, nil)
	require.NoError(t, err, "writes are not limited by the lock count")
	_, err = s.Create(ctx, "b", now, lock("/over", true, false))
	require.NoError(t, err, "another user's locks do not count")
	require.NoError(t, s.Unlock(ctx, "a", now, first.Token, "/f0"))
	_, err = s.Create(ctx, "a", now, lock("/over", true, false))
	require.NoError(t, err, "an unlock frees a slot")
	_, err = s.Create(ctx, "a", now, lock("/over2", true, false))
	require.ErrorIs(t, err, davlock.ErrTooManyLocks)
	_, err = s.Create(ctx, "a", now.Add(2*time.Minute), lock("/over2", true, false))
	require.NoError(t, err, "expired locks free their slots")
}

// A write whose replica died (its lease no longer renewed) keeps the file
// locked at most DefaultLease, and a write refused meanwhile learns when to
// try again. Fault suite at 9b7ac62: a client retried its PUT after the
// serve handling it was SIGKILLed and got 423 Locked, from the dead
// replica's transient lock, which lived a minute.
func TestDeadWritersLockExpiresWithinTheLease(t *testing.T) {
	pool, url := testenv.Database(t)
	deadPool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	dead := &davlock.Store{Pool: deadPool} // the replica that dies mid-PUT
	live := &davlock.Store{Pool: pool}
	t0 := time.Now()
	_, err = dead.Acquire(ctx, "u", t0, []davlock.Target{{Path: "/f.bin"}}, nil)
	require.NoError(t, err)
	deadPool.Close() // its renewals fail from now on, as a killed process's would

	_, err = live.Acquire(ctx, "u", t0.Add(time.Second), []davlock.Target{{Path: "/f.bin"}}, nil)
	require.ErrorIs(t, err, davlock.ErrLocked, "the write is still within its lease")
	var le *davlock.LockedError
	require.ErrorAs(t, err, &le, "a conflict with a write in progress says when to retry")
	require.Greater(t, le.RetryAfter, time.Duration(0))
	require.LessOrEqual(t, le.RetryAfter, davlock.DefaultLease-time.Second)
	_, err = live.Create(ctx, "u", t0.Add(time.Second), lock("/f.bin", true, false))
	require.ErrorAs(t, err, &le, "a LOCK refused by a write in progress too")

	// The contract's bound: 10 s after the holder stopped renewing.
	require.LessOrEqual(t, davlock.DefaultLease, 10*time.Second)
	g, err := live.Acquire(ctx, "u", t0.Add(10*time.Second+time.Millisecond), []davlock.Target{{Path: "/f.bin"}}, nil)
	require.NoError(t, err, "the dead writer's lock is gone after the lease")
	g.Release()

	// A client's LOCK is no write in progress: no Retry-After.
	_, err = live.Create(ctx, "u", time.Now(), lock("/locked.txt", true, false))
	require.NoError(t, err)
	_, err = live.Acquire(ctx, "u", time.Now(), []davlock.Target{{Path: "/locked.txt"}}, nil)
	require.ErrorIs(t, err, davlock.ErrLocked)
	require.False(t, errors.As(err, &le), "a LOCK's conflict lasts until its client unlocks")
}
