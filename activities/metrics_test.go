package activities_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/metrics"
)

// TestLifecycleTransitionsCountEachLedgerRowOnce: a retried write (same dedup
// key) is counted once, like the row it writes.
func TestLifecycleTransitionsCountEachLedgerRowOnce(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	reg := prometheus.NewRegistry()
	m, err := activities.NewMetrics(reg)
	require.NoError(t, err)
	f.acts.Metrics = m
	_, err = f.q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: "u1", ThreadID: "t1"})
	require.NoError(t, err)
	at := time.Now()
	ev := activities.LifecycleEvent{DedupKey: "thread:u1:t1/run/1", Kind: entity.KindThread, UserID: "u1", ThreadID: "t1",
		SandboxID: "sbx-1", Event: "created", Cause: activities.CauseUse, OccurredAt: at, State: "running", Generation: 1}
	require.NoError(t, f.acts.RecordLifecycleEvent(ctx, ev))
	require.NoError(t, f.acts.RecordLifecycleEvent(ctx, ev), "a retry")
	stop := ev
	stop.DedupKey, stop.Event, stop.Cause, stop.State = "thread:u1:t1/run/2", "stopped", activities.CauseIdleTimer, "stopped"
	require.NoError(t, f.acts.RecordLifecycleEvent(ctx, stop))

	expected := `
# HELP threadbox_lifecycle_transitions_total Sandbox lifecycle transitions written to the ledger, by kind, event and cause.
# TYPE threadbox_lifecycle_transitions_total counter
threadbox_lifecycle_transitions_total{cause="idle_timer",event="stopped",kind="thread"} 1
threadbox_lifecycle_transitions_total{cause="use",event="created",kind="thread"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected), metrics.LifecycleTransitions))
}

// TestReconcilerCountsDeletedOrphans: the orphan counter starts at zero for
// both kinds and counts the leaked sandbox the reconciler deletes.
func TestReconcilerCountsDeletedOrphans(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	c, _ := testenv.Temporal(t)
	f.acts.Temporal = c
	reg := prometheus.NewRegistry()
	m, err := activities.NewMetrics(reg)
	require.NoError(t, err)
	f.acts.Metrics = m
	count := func(kind string) float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != metrics.ReconcilerOrphansDeleted {
				continue
			}
			for _, s := range mf.GetMetric() {
				if s.GetLabel()[0].GetValue() == kind {
					return s.GetCounter().GetValue()
				}
			}
		}
		t.Fatalf("no %s series for kind %s", metrics.ReconcilerOrphansDeleted, kind)
		return 0
	}
	assert.Zero(t, count(string(entity.KindThread)))
	assert.Zero(t, count(string(entity.KindFiles)))

	orphan, err := f.acts.EnsureSandbox(ctx, threadInput("erin", "gone", 1))
	require.NoError(t, err)
	res, err := f.acts.ReconcileSandboxes(ctx, activities.ReconcileInput{})
	require.NoError(t, err)
	require.Equal(t, []string{orphan.SandboxID}, res.Deleted)
	assert.Equal(t, 1.0, count(string(entity.KindThread)))
	assert.Zero(t, count(string(entity.KindFiles)))
}
