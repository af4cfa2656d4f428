package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

func TestMigrationsApplyToEmptyDatabaseAndAreIdempotent(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.EmptyDatabase(t)

	n, err := db.Migrate(ctx, pool)
	require.NoError(t, err)
	require.Positive(t, n, "an empty database gets every migration")

	var tables []string
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	require.Subset(t, tables, []string{"api_keys", "threads", "volumes", "sandboxes", "snapshots",
		"snapshot_activations", "skills", "uploads", "dead_props", "lifecycle_events"})

	again, err := db.Migrate(ctx, pool)
	require.NoError(t, err)
	require.Zero(t, again, "a second run applies nothing")

	// Concurrent starts (serve, worker and dev at once) must not fail.
	pool2, _ := testenv.EmptyDatabase(t)
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := db.Migrate(ctx, pool2); errs <- err }()
	}
	for range 3 {
		require.NoError(t, <-errs)
	}
}

func TestAPIKeyQueriesRoundTrip(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Database(t)
	q := db.New(pool)

	id := uuid.New()
	hash := []byte("0123456789abcdef0123456789abcdef")
	created, err := q.CreateAPIKey(ctx, db.CreateAPIKeyParams{ID: id, UserID: "u1", KeyHash: hash, KeyPrefix: "tb_abc", IsAdmin: true})
	require.NoError(t, err)
	require.Equal(t, id, created.ID)
	require.True(t, created.IsAdmin)
	require.Nil(t, created.RevokedAt)

	got, err := q.GetActiveAPIKeyByHash(ctx, hash)
	require.NoError(t, err)
	require.Equal(t, created.ID, got.ID)
	require.Equal(t, "u1", got.UserID)

	user := "u1"
	list, err := q.ListAPIKeys(ctx, db.ListAPIKeysParams{UserID: &user})
	require.NoError(t, err)
	require.Len(t, list, 1)

	n, err := q.RevokeAPIKey(ctx, id)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = q.RevokeAPIKey(ctx, id)
	require.NoError(t, err)
	require.EqualValues(t, 0, n, "revoking twice changes nothing")
	_, err = q.GetActiveAPIKeyByHash(ctx, hash)
	require.Error(t, err, "a revoked key is not found")

	_, err = q.CreateAPIKey(ctx, db.CreateAPIKeyParams{ID: uuid.New(), UserID: "u2", KeyHash: hash, KeyPrefix: "x"})
	require.Error(t, err, "key hashes are unique")
}

func TestLedgerIsIdempotentOnDedupKey(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Database(t)
	q := db.New(pool)
	at := time.Now().UTC().Truncate(time.Microsecond)
	ev := db.RecordLifecycleEventParams{
		DedupKey: "thread:u:t/run/1", EntityKind: "thread", UserID: "u", EntityID: "t",
		SandboxID: "sb1", Event: "created", Cause: "use", OccurredAt: at,
	}
	n, err := q.RecordLifecycleEvent(ctx, ev)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	n, err = q.RecordLifecycleEvent(ctx, ev)
	require.NoError(t, err)
	require.EqualValues(t, 0, n, "a retried activity does not duplicate the row")

	ev.DedupKey, ev.Event, ev.Cause = "thread:u:t/run/2", "stopped", "idle_timer"
	_, err = q.RecordLifecycleEvent(ctx, ev)
	require.NoError(t, err)
	events, err := q.ListLifecycleEvents(ctx, db.ListLifecycleEventsParams{EntityKind: "thread", UserID: "u", EntityID: "t"})
	require.NoError(t, err)
	require.Len(t, events, 2)
	require.Equal(t, "created", events[0].Event)
	require.Equal(t, "idle_timer", events[1].Cause)
	require.True(t, events[0].OccurredAt.Equal(at))

	ev.DedupKey, ev.EntityKind = "x", "planet"
	_, err = q.RecordLifecycleEvent(ctx, ev)
	require.Error(t, err, "unknown entity kinds are refused by the schema")
}
