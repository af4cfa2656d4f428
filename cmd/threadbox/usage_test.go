package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/usage"
)

// `threadbox usage` prints the ledger's report for a period: as JSON (the
// admin route's shape) and as tables.
func TestUsageCommand(t *testing.T) {
	pool, dbURL := testenv.Database(t)
	q := db.New(pool)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, r := range []struct {
		event    string
		at       time.Duration
		deadline time.Duration
	}{{"created", 0, 0}, {"stopped", 95 * time.Second, 90 * time.Second}} {
		var deadline *time.Time
		if r.deadline > 0 {
			d := base.Add(r.deadline)
			deadline = &d
		}
		_, err := q.RecordLifecycleEvent(ctx, db.RecordLifecycleEventParams{DedupKey: "cli/" + string(rune('a'+i)), EntityKind: "thread",
			UserID: "carol", EntityID: "t", Event: r.event, Cause: "use", OccurredAt: base.Add(r.at), StopDeadline: deadline})
		require.NoError(t, err)
	}
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LOG_LEVEL", "error")
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		cmd := newRootCommand()
		cmd.SetOut(&out)
		cmd.SetArgs(append([]string{"usage"}, args...))
		require.NoError(t, cmd.ExecuteContext(ctx))
		return out.String()
	}
	var rep usage.Report
	require.NoError(t, json.Unmarshal([]byte(run("--from", "2026-03-01", "--to", "2026-03-02", "--json")), &rep))
	require.Equal(t, []usage.ThreadUsage{{UserID: "carol", ThreadID: "t", Seconds: usage.Seconds{Running: 95, Late: 5}}}, rep.Threads)
	text := run("--from", "2026-03-01T10:00:30Z", "--to", "2026-03-01T11:00:00Z", "--user", "carol")
	require.Regexp(t, `carol\s+65\.000\s+5\.000\s+0\.000\s+0\.000\n`, text, "per user")
	require.Regexp(t, `total\s+65\.000\s+5\.000\s+0\.000\s+0\.000\n`, text)
	require.Regexp(t, `carol\s+t\s+65\.000\s+5\.000\n`, text, "per thread")

	err := newRootCommand()
	err.SetArgs([]string{"usage", "--from", "2026-03-02", "--to", "2026-03-01"})
	require.ErrorContains(t, err.ExecuteContext(ctx), "must be before")
}
