package auth_test

import (
	"bytes"
	"context"
	"testing"

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
