package metrics_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/metrics"
)

// TestTemporalHandlerExportsSDKMetrics: counters get _total, timers become
// histograms in seconds, tags become labels (absent ones empty), and one name
// used from two tagged handlers is one metric.
func TestTemporalHandlerExportsSDKMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := metrics.NewTemporalHandler(reg, slog.New(slog.DiscardHandler))
	base := h.WithTags(map[string]string{"namespace": "default", "client_name": "temporal_go", "task_queue": "tq"})
	base.WithTags(map[string]string{"workflow_type": "Thread", "failure_reason": "NonDeterminismError"}).
		Counter("temporal_workflow_task_execution_failed").Inc(2)
	base.WithTags(map[string]string{"workflow_type": "Files"}).Counter("temporal_workflow_task_execution_failed").Inc(1)
	base.Timer("temporal_activity_execution_latency").Record(1500 * time.Millisecond)
	base.Gauge("temporal_num_pollers").Update(3)

	expected := `
# HELP temporal_workflow_task_execution_failed_total Temporal SDK counter temporal_workflow_task_execution_failed.
# TYPE temporal_workflow_task_execution_failed_total counter
temporal_workflow_task_execution_failed_total{activity_type="",cause="",failure_reason="",namespace="default",nexus_operation="",nexus_service="",operation="",poller_type="",status_code="",task_queue="tq",worker_type="",workflow_type="Files"} 1
temporal_workflow_task_execution_failed_total{activity_type="",cause="",failure_reason="NonDeterminismError",namespace="default",nexus_operation="",nexus_service="",operation="",poller_type="",status_code="",task_queue="tq",worker_type="",workflow_type="Thread"} 2
# HELP temporal_num_pollers Temporal SDK gauge temporal_num_pollers.
# TYPE temporal_num_pollers gauge
temporal_num_pollers{activity_type="",cause="",failure_reason="",namespace="default",nexus_operation="",nexus_service="",operation="",poller_type="",status_code="",task_queue="tq",worker_type="",workflow_type=""} 3
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected),
		"temporal_workflow_task_execution_failed_total", "temporal_num_pollers"))
	n, err := testutil.GatherAndCount(reg, "temporal_activity_execution_latency_seconds")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the timer is a histogram in seconds")

	// A name that clashes with a metric registered elsewhere costs that
	// metric, not the worker.
	require.NoError(t, reg.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "temporal_clash_total", Help: "x"})))
	assert.NotPanics(t, func() { h.Counter("temporal_clash").Inc(1) })
}

// TestStateCollectorReadsSandboxesAndVolumes: the gauges are what the tables
// hold (deleted sandboxes left out), read at scrape time.
func TestStateCollectorReadsSandboxesAndVolumes(t *testing.T) {
	pool, _ := testenv.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := db.New(pool)
	for i, sb := range []struct{ kind, state string }{
		{"agent", "running"}, {"agent", "running"}, {"agent", "stopped"}, {"files", "running"}, {"agent", "deleted"},
	} {
		id := "sbx-" + string(rune('a'+i))
		require.NoError(t, q.UpsertSandbox(ctx, db.UpsertSandboxParams{SandboxID: id, Name: id, SandboxType: sb.kind, State: "creating"}))
		_, err := q.SetSandboxState(ctx, db.SetSandboxStateParams{SandboxID: id, State: sb.state})
		require.NoError(t, err)
	}
	const quota = 1000
	for user, used := range map[string]int64{"u1": 100, "u2": 950, "u3": 900} {
		require.NoError(t, q.UpsertVolume(ctx, db.UpsertVolumeParams{UserID: user, VolumeName: "tb-vol-" + user}))
		_, err := q.SetVolumeUsage(ctx, db.SetVolumeUsageParams{UserID: user, UsedBytes: used})
		require.NoError(t, err)
	}
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(metrics.NewStateCollector(q, quota, slog.New(slog.DiscardHandler))))
	expected := `
# HELP threadbox_sandboxes Sandboxes threadbox holds that are not deleted, by kind and state.
# TYPE threadbox_sandboxes gauge
threadbox_sandboxes{kind="agent",state="running"} 2
threadbox_sandboxes{kind="agent",state="stopped"} 1
threadbox_sandboxes{kind="files",state="running"} 1
# HELP threadbox_volume_used_bytes Bytes stored in users' volumes, as the quota layer last counted them.
# TYPE threadbox_volume_used_bytes gauge
threadbox_volume_used_bytes 1950
# HELP threadbox_volumes Users' volumes.
# TYPE threadbox_volumes gauge
threadbox_volumes 3
# HELP threadbox_volumes_near_quota Volumes using at least 90% of the per-user quota.
# TYPE threadbox_volumes_near_quota gauge
threadbox_volumes_near_quota 2
# HELP threadbox_volume_quota_bytes The per-user volume quota in bytes.
# TYPE threadbox_volume_quota_bytes gauge
threadbox_volume_quota_bytes 1000
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected),
		metrics.Sandboxes, metrics.VolumeUsedBytes, metrics.Volumes, metrics.VolumesNearQuota, metrics.VolumeQuotaBytes))
}
