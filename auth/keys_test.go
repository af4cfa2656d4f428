package auth_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

func TestKeysAreStoredHashedAndVerify(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Database(t)
	store := auth.NewStore(db.New(pool))

	key, row, err := store.Create(ctx, "alice", false)
	require.NoError(t, err)
	require.NotEmpty(t, key)
	require.Equal(t, auth.Hash(key), row.KeyHash)

	// Nothing in the table holds the clear key.
	var stored []byte
	var prefix string
	require.NoError(t, pool.QueryRow(ctx, "SELECT key_hash, key_prefix FROM api_keys WHERE id = $1", row.ID).Scan(&stored, &prefix))
	require.False(t, bytes.Contains(stored, []byte(key)))
	require.Less(t, len(prefix), len(key)/3, "only a short prefix is kept for identification")

	p, err := store.Verify(ctx, key)
	require.NoError(t, err)
	require.Equal(t, auth.Principal{UserID: "alice", Admin: false, KeyID: row.ID}, p)

	_, err = store.Verify(ctx, key+"x")
	require.ErrorIs(t, err, auth.ErrInvalidKey)
	_, err = store.Verify(ctx, "not-a-key")
	require.ErrorIs(t, err, auth.ErrInvalidKey)

	ok, err := store.Revoke(ctx, row.ID)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = store.Verify(ctx, key)
	require.ErrorIs(t, err, auth.ErrInvalidKey, "a revoked key no longer verifies")

	admin, _, err := store.Create(ctx, "root", true)
	require.NoError(t, err)
	p, err = store.Verify(ctx, admin)
	require.NoError(t, err)
	require.True(t, p.Admin)
}

func TestUserIDRules(t *testing.T) {
	for _, ok := range []string{"u", "alice", "user_1.example-x", "A9"} {
		require.NoError(t, auth.ValidUserID(ok), ok)
	}
	for _, bad := range []string{"", ".hidden", "-x", "a/b", "a b", "é", "a:b", string(make([]byte, 65))} {
		require.Error(t, auth.ValidUserID(bad), bad)
	}
}

func TestExpiredKeysStopVerifying(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Database(t)
	store := auth.NewStore(db.New(pool))

	key, row, err := store.Issue(ctx, auth.Spec{UserID: "alice", ExpiresAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.NotNil(t, row.ExpiresAt)
	_, err = store.Verify(ctx, key)
	require.NoError(t, err, "a key before its expiry verifies")

	_, err = pool.Exec(ctx, "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", row.ID)
	require.NoError(t, err)
	_, err = store.Verify(ctx, key)
	require.ErrorIs(t, err, auth.ErrInvalidKey, "an expired key no longer verifies")

	active, err := store.List(ctx, "alice", false)
	require.NoError(t, err)
	require.Empty(t, active, "expired keys are left out of the default list")
	all, err := store.List(ctx, "alice", true)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, auth.KeyExpired, all[0].State)
	require.Equal(t, row.KeyPrefix, all[0].Prefix)
}

func TestListAndRevokeByID(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Database(t)
	store := auth.NewStore(db.New(pool))
	_, a, err := store.Create(ctx, "alice", false)
	require.NoError(t, err)
	_, b, err := store.Create(ctx, "bob", true)
	require.NoError(t, err)

	every, err := store.List(ctx, "", false)
	require.NoError(t, err)
	require.Len(t, every, 2)
	bobs, err := store.List(ctx, "bob", false)
	require.NoError(t, err)
	require.Len(t, bobs, 1)
	require.Equal(t, b.ID, bobs[0].ID)
	require.True(t, bobs[0].Admin)
	require.Equal(t, auth.KeyActive, bobs[0].State)

	revoked, err := store.Revoke(ctx, a.ID)
	require.NoError(t, err)
	require.True(t, revoked)
	revoked, err = store.Revoke(ctx, a.ID)
	require.NoError(t, err)
	require.False(t, revoked, "a second revoke reports that it was revoked before")
	_, err = store.Revoke(ctx, uuid.New())
	require.ErrorIs(t, err, auth.ErrKeyNotFound)

	info, err := store.Get(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, auth.KeyRevoked, info.State)
	require.NotNil(t, info.RevokedAt)
}

// cacheFixture is a key store over a fresh database and a cache over it on
// a clock the test moves.
func cacheFixture(t *testing.T) (*pgxpool.Pool, *auth.Store, *auth.Cache, *testenv.Clock) {
	t.Helper()
	pool, _ := testenv.Database(t)
	store := auth.NewStore(db.New(pool))
	clock := testenv.NewClock(time.Now())
	cache := auth.NewCache(store, nil, clock.Now)
	t.Cleanup(cache.Close)
	return pool, store, cache, clock
}

func TestCacheTrustsAVerificationForAtMostCacheTTL(t *testing.T) {
	ctx := context.Background()
	_, store, cache, clock := cacheFixture(t)

	key, row, err := store.Create(ctx, "alice", false)
	require.NoError(t, err)
	p, err := cache.Verify(ctx, key)
	require.NoError(t, err)
	require.Equal(t, "alice", p.UserID)

	_, err = store.Revoke(ctx, row.ID)
	require.NoError(t, err)
	_, err = cache.Verify(ctx, key)
	require.NoError(t, err, "within CacheTTL the cached verification is trusted (this is the cache at work)")

	clock.Add(auth.CacheTTL)
	_, err = cache.Verify(ctx, key)
	require.ErrorIs(t, err, auth.ErrInvalidKey, "CacheTTL after the verification the revoke is seen")
	require.LessOrEqual(t, auth.CacheTTL, time.Second, "the contract: a revoked key is refused within one second")

	// Failures are not cached: a key created after a miss verifies at once.
	_, err = cache.Verify(ctx, "tb_not-yet")
	require.ErrorIs(t, err, auth.ErrInvalidKey)
	fresh, _, err := store.Create(ctx, "bob", false)
	require.NoError(t, err)
	_, err = cache.Verify(ctx, fresh)
	require.NoError(t, err)
}

func TestCacheEntryEndsAtTheKeysExpiry(t *testing.T) {
	ctx := context.Background()
	_, store, cache, clock := cacheFixture(t)

	expiry := time.Now().Add(time.Hour)
	key, _, err := store.Issue(ctx, auth.Spec{UserID: "alice", ExpiresAt: expiry})
	require.NoError(t, err)
	clock.Set(expiry.Add(-auth.CacheTTL / 10))
	_, err = cache.Verify(ctx, key)
	require.NoError(t, err)
	clock.Set(expiry)
	_, err = cache.Verify(ctx, key)
	require.ErrorIs(t, err, auth.ErrInvalidKey, "a cached key is not trusted past its expiry")
}

func TestLastUsedIsRecordedAtMostOnceAMinute(t *testing.T) {
	ctx := context.Background()
	pool, store, cache, clock := cacheFixture(t)
	key, row, err := store.Create(ctx, "alice", false)
	require.NoError(t, err)

	lastUsed := func() *time.Time {
		info, err := store.Get(ctx, row.ID)
		require.NoError(t, err)
		return info.LastUsedAt
	}
	require.Nil(t, lastUsed())
	_, err = cache.Verify(ctx, key)
	require.NoError(t, err)
	testenv.Eventually(t, 5*time.Second, "last_used_at recorded", func() bool { return lastUsed() != nil })

	// Pretend the recorded use is old; uses within this replica's minute
	// write nothing, the first one after it does.
	_, err = pool.Exec(ctx, "UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1", row.ID)
	require.NoError(t, err)
	old := *lastUsed()
	for range 20 {
		clock.Add(2 * time.Second)
		_, err = cache.Verify(ctx, key)
		require.NoError(t, err)
	}
	time.Sleep(200 * time.Millisecond) // a touch, if one had been sent, lands well within this
	require.True(t, lastUsed().Equal(old), "no write within a minute of the last one")

	clock.Add(auth.TouchInterval)
	_, err = cache.Verify(ctx, key)
	require.NoError(t, err)
	testenv.Eventually(t, 5*time.Second, "last_used_at updated after a minute", func() bool { return lastUsed().After(old) })
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	pool, _ := testenv.Database(b)
	store := auth.NewStore(db.New(pool))
	key, _, err := store.Create(ctx, "alice", false)
	require.NoError(b, err)
	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.Verify(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache", func(b *testing.B) {
		cache := auth.NewCache(store, nil, nil)
		defer cache.Close()
		for b.Loop() {
			if _, err := cache.Verify(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}
