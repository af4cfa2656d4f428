package usage_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/metrics"
	"github.com/threadbox/threadbox/usage"
)

// at is a moment of the scripted day.
func at(hms string) time.Time {
	t, err := time.Parse(time.DateTime, "2026-03-01 "+hms)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// row is one scripted ledger row: kind, user, thread ("" for files), event,
// cause, when, and the stop deadline ("" for none).
type row struct {
	kind               entity.Kind
	user, thread       string
	event, cause, when string
	deadline           string
}

// script is a day of lifecycles whose running time is known to the second
// (the report's period is 10:00–12:00):
//
//	alice/t1  created 09:50, stopped 10:10 (deadline 10:05): 600 s in the period, 300 late
//	          started 10:30, stopped 10:45:30 (deadline 10:45): 930 s, 30 late
//	          started 11:50, stopped 12:20 (deadline 11:55): 600 s in the period, 300 late
//	alice/t2  created 10:15:00, deleted by the user 10:15:42: 42 s
//	alice     files: created 09:00, stopped 09:30 (before); started 11:00, still running: 3,600 s
//	bob/t3    created 08:00, started 08:01 (while running), stopped 08:30: all before the period
//	          started 11:59:59, lost 12:00:01: 1 s in the period
//	bob/t4    created 10:00, started 10:20 (Daytona stopped it behind the workflow's back),
//	          stopped 10:25 (deadline 10:24): 1,500 s, 60 late
var script = []row{
	{entity.KindThread, "alice", "t1", "created", "use", "09:50:00", ""},
	{entity.KindThread, "alice", "t1", "stopped", "idle_timer", "10:10:00", "10:05:00"},
	{entity.KindThread, "alice", "t1", "started", "use", "10:30:00", ""},
	{entity.KindThread, "alice", "t1", "stopped", "idle_timer", "10:45:30", "10:45:00"},
	{entity.KindThread, "alice", "t1", "started", "use", "11:50:00", ""},
	{entity.KindThread, "alice", "t1", "stopped", "idle_timer", "12:20:00", "11:55:00"},
	{entity.KindThread, "alice", "t2", "created", "use", "10:15:00", ""},
	{entity.KindThread, "alice", "t2", "deleted", "user_delete", "10:15:42", ""},
	{entity.KindFiles, "alice", "", "created", "use", "09:00:00", ""},
	{entity.KindFiles, "alice", "", "stopped", "idle_timer", "09:30:00", "09:29:00"},
	{entity.KindFiles, "alice", "", "started", "use", "11:00:00", ""},
	{entity.KindThread, "bob", "t3", "created", "use", "08:00:00", ""},
	{entity.KindThread, "bob", "t3", "started", "use", "08:01:00", ""},
	{entity.KindThread, "bob", "t3", "stopped", "idle_timer", "08:30:00", ""},
	{entity.KindThread, "bob", "t3", "orphan_deleted", "reconcile", "11:00:00", ""},
	{entity.KindThread, "bob", "t3", "started", "use", "11:59:59", ""},
	{entity.KindThread, "bob", "t3", "lost", "idle_timer", "12:00:01", ""},
	{entity.KindThread, "bob", "t4", "created", "use", "10:00:00", ""},
	{entity.KindThread, "bob", "t4", "started", "use", "10:20:00", ""},
	{entity.KindThread, "bob", "t4", "stopped", "idle_timer", "10:25:00", "10:24:00"},
}

// record writes the script through the activity the workflows use, with
// its metrics.
func record(t *testing.T, q *db.Queries, acts *activities.Activities) {
	t.Helper()
	for i, r := range script {
		ev := activities.LifecycleEvent{DedupKey: fmt.Sprintf("script/%d", i), Kind: r.kind, UserID: r.user, ThreadID: r.thread,
			SandboxID: "sbx-" + r.user + r.thread, Event: r.event, Cause: r.cause, OccurredAt: at(r.when), State: "running"}
		if r.deadline != "" {
			ev.StopDeadline = at(r.deadline)
		}
		require.NoError(t, acts.RecordLifecycleEvent(context.Background(), ev))
	}
}

func TestReportOfScriptedLedger(t *testing.T) {
	pool, _ := testenv.Database(t)
	q := db.New(pool)
	reg := prometheus.NewRegistry()
	m, err := activities.NewMetrics(reg)
	require.NoError(t, err)
	acts := activities.New(config.Config{}, pool, nil, nil)
	acts.Metrics = m
	record(t, q, acts)
	ctx := context.Background()

	rep, err := usage.Read(ctx, q, at("10:00:00"), at("12:00:00"), at("13:00:00"), "")
	require.NoError(t, err)
	require.Equal(t, usage.Kinds{Agent: usage.Seconds{Running: 3673, Late: 690}, Files: usage.Seconds{Running: 3600}}, rep.Total)
	require.Equal(t, []usage.UserUsage{
		{UserID: "alice", Kinds: usage.Kinds{Agent: usage.Seconds{Running: 2172, Late: 630}, Files: usage.Seconds{Running: 3600}}},
		{UserID: "bob", Kinds: usage.Kinds{Agent: usage.Seconds{Running: 1501, Late: 60}}},
	}, rep.Users)
	require.Equal(t, []usage.ThreadUsage{
		{UserID: "alice", ThreadID: "t1", Seconds: usage.Seconds{Running: 2130, Late: 630}},
		{UserID: "alice", ThreadID: "t2", Seconds: usage.Seconds{Running: 42}},
		{UserID: "bob", ThreadID: "t3", Seconds: usage.Seconds{Running: 1}},
		{UserID: "bob", ThreadID: "t4", Seconds: usage.Seconds{Running: 1500, Late: 60}},
	}, rep.Threads)

	// One user only.
	rep, err = usage.Read(ctx, q, at("10:00:00"), at("12:00:00"), at("13:00:00"), "bob")
	require.NoError(t, err)
	require.Equal(t, usage.Kinds{Agent: usage.Seconds{Running: 1501, Late: 60}}, rep.Total)
	require.Len(t, rep.Users, 1)

	// A sandbox still running counts up to the report's moment.
	rep, err = usage.Read(ctx, q, at("10:00:00"), at("12:00:00"), at("11:30:00"), "alice")
	require.NoError(t, err)
	require.Equal(t, usage.Seconds{Running: 1800}, rep.Total.Files)

	// A period inside one interval: 10:40–10:50 catches the end of t1's
	// second run (10:40–10:45:30, 330 s, of which 30 late).
	rep, err = usage.Read(ctx, q, at("10:40:00"), at("10:50:00"), at("13:00:00"), "alice")
	require.NoError(t, err)
	require.Equal(t, []usage.ThreadUsage{{UserID: "alice", ThreadID: "t1", Seconds: usage.Seconds{Running: 330, Late: 30}}}, rep.Threads)

	// The worker's counter: every interval that ended, all day (the files
	// sandbox still running is not counted yet); the stop delays observed.
	// agent: t1 1200+930+1800, t2 42, t3 60+1740+2, t4 1200+300; files 1800.
	expected := `
# HELP threadbox_sandbox_seconds_total Seconds sandboxes ran, by kind (agent, files), counted from the ledger as each running interval ends.
# TYPE threadbox_sandbox_seconds_total counter
threadbox_sandbox_seconds_total{kind="agent"} 7274
threadbox_sandbox_seconds_total{kind="files"} 1800
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected), metrics.SandboxSeconds))
	count, sum := histogram(t, reg, metrics.SandboxStopDelay, "agent")
	require.Equal(t, uint64(4), count)
	require.Equal(t, float64(300+30+1500+60), sum)
	count, sum = histogram(t, reg, metrics.SandboxStopDelay, "files")
	require.Equal(t, uint64(1), count)
	require.Equal(t, float64(60), sum)

	// A retried write (same dedup key) counts nothing again.
	ev := activities.LifecycleEvent{DedupKey: "script/1", Kind: entity.KindThread, UserID: "alice", ThreadID: "t1",
		Event: "stopped", Cause: "idle_timer", OccurredAt: at("10:10:00"), StopDeadline: at("10:05:00")}
	require.NoError(t, acts.RecordLifecycleEvent(ctx, ev))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected), metrics.SandboxSeconds))
}

func histogram(t *testing.T, reg *prometheus.Registry, name, kind string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	t.Fatalf("%s{kind=%q} not found", name, kind)
	return 0, 0
}

func TestParsePeriod(t *testing.T) {
	f, to, err := usage.ParsePeriod("2026-03-01", "2026-03-01T12:30:00+02:00")
	require.NoError(t, err)
	require.Equal(t, at("00:00:00"), f.UTC())
	require.Equal(t, at("10:30:00"), to.UTC())
	for _, bad := range [][2]string{{"", "2026-03-02"}, {"2026-03-02", ""}, {"yesterday", "2026-03-02"}, {"2026-03-02", "2026-03-01"}, {"2026-03-01", "2026-03-01"}} {
		_, _, err := usage.ParsePeriod(bad[0], bad[1])
		require.Error(t, err, "%v", bad)
	}
}
