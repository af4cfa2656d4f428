package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

// runCLI runs the threadbox command with args and returns what it printed.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// `threadbox apikey create|list|revoke`: a key with an expiry is listed with
// it, a revoked key stops verifying and is listed only with --all.
func TestAPIKeyCommands(t *testing.T) {
	pool, dbURL := testenv.Database(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LOG_LEVEL", "warn")
	store := auth.NewStore(db.New(pool))
	ctx := context.Background()

	out, err := runCLI(t, "apikey", "create", "--user", "alice", "--expires", "720h")
	require.NoError(t, err, out)
	key := strings.TrimSpace(out)
	p, err := store.Verify(ctx, key)
	require.NoError(t, err)
	require.Equal(t, "alice", p.UserID)

	out, err = runCLI(t, "apikey", "list", "--json")
	require.NoError(t, err, out)
	var keys []auth.KeyInfo
	require.NoError(t, json.Unmarshal([]byte(out), &keys), out)
	require.Len(t, keys, 1)
	require.Equal(t, p.KeyID, keys[0].ID)
	require.NotNil(t, keys[0].ExpiresAt)
	require.WithinDuration(t, time.Now().Add(720*time.Hour), *keys[0].ExpiresAt, time.Minute)
	require.NotContains(t, out, key, "a listing never shows a key")

	out, err = runCLI(t, "apikey", "list", "--user", "alice")
	require.NoError(t, err, out)
	require.Contains(t, out, p.KeyID.String())
	require.Contains(t, out, "active")

	out, err = runCLI(t, "apikey", "revoke", p.KeyID.String())
	require.NoError(t, err, out)
	require.Contains(t, out, "revoked")
	_, err = store.Verify(ctx, key)
	require.ErrorIs(t, err, auth.ErrInvalidKey)

	out, err = runCLI(t, "apikey", "list")
	require.NoError(t, err, out)
	require.NotContains(t, out, p.KeyID.String(), "revoked keys are left out by default")
	out, err = runCLI(t, "apikey", "list", "--all")
	require.NoError(t, err, out)
	require.Contains(t, out, p.KeyID.String())
	require.Contains(t, out, "revoked")

	_, err = runCLI(t, "apikey", "revoke", "00000000-0000-0000-0000-000000000001")
	require.ErrorIs(t, err, auth.ErrKeyNotFound)
	_, err = runCLI(t, "apikey", "create", "--user", "bob", "--expires", "-1h")
	require.Error(t, err)
}
