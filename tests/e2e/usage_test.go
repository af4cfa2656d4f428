package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/usage"
)

// TestUsageOfARealLifecycle runs a thread through create, use and the idle
// stop (2 s auto-stop), then checks the admin usage report against the
// ledger rows the workflow wrote: the running time is the created → stopped
// interval to the nanosecond PostgreSQL keeps, the stop deadline is the
// last use + auto-stop, and the late seconds are the stop's distance past
// it; the worker's counters agree.
func TestUsageOfARealLifecycle(t *testing.T) {
	env := testenv.New(t, testenv.Options{AutoStop: 2 * time.Second, AutoDelete: time.Hour, NoWorker: true})
	reg := prometheus.NewRegistry()
	m, err := activities.NewMetrics(reg)
	require.NoError(t, err)
	env.Activities.Metrics = m
	env.StartWorker()
	ctx := context.Background()
	q := db.New(env.Pool)

	from := time.Now().Add(-time.Minute).UTC()
	c := newTC(t, env, env.UserKey)
	c.create("metered")
	require.Equal(t, 0, c.exec("metered", "true").ExitCode)
	var rows []db.LifecycleEvent
	testenv.Eventually(t, 30*time.Second, "the idle stop in the ledger", func() bool {
		rows, err = q.ListLifecycleEvents(ctx, db.ListLifecycleEventsParams{EntityKind: "thread", UserID: env.UserID, EntityID: "metered"})
		require.NoError(t, err)
		return len(rows) > 0 && rows[len(rows)-1].Event == "stopped"
	})
	require.Len(t, rows, 2, "created, stopped")
	created, stopped := rows[0], rows[1]
	require.Equal(t, "created", created.Event)
	require.NotNil(t, stopped.StopDeadline, "an idle stop records the deadline it carried out")
	th, err := q.APIGetThread(ctx, db.APIGetThreadParams{UserID: env.UserID, ThreadID: "metered"})
	require.NoError(t, err)
	require.NotNil(t, th.LastActivityAt)
	require.True(t, th.LastActivityAt.Add(2*time.Second).Equal(*stopped.StopDeadline),
		"deadline %s = last use %s + auto-stop", stopped.StopDeadline, th.LastActivityAt)
	running := stopped.OccurredAt.Sub(created.OccurredAt)
	late := stopped.OccurredAt.Sub(*stopped.StopDeadline)
	require.Greater(t, running, 2*time.Second)
	require.Greater(t, late, time.Duration(0), "a stop takes its own time after the deadline")
	require.Less(t, late, 10*time.Second)

	to := time.Now().Add(time.Minute).UTC()
	query := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}, "user": {env.UserID}}
	admin := newTC(t, env, env.AdminKey)
	resp, body := admin.call(http.MethodGet, "/v1/admin/usage?"+query.Encode(), nil)
	require.Equal(t, 200, resp.StatusCode, string(body))
	var rep usage.Report
	require.NoError(t, json.Unmarshal(body, &rep))
	want := usage.Seconds{Running: running.Seconds(), Late: late.Seconds()}
	require.Equal(t, []usage.ThreadUsage{{UserID: env.UserID, ThreadID: "metered", Seconds: want}}, rep.Threads)
	require.Equal(t, want, rep.Total.Agent)
	require.Len(t, rep.Users, 1)
	require.Equal(t, want, rep.Users[0].Agent)

	// The worker counted the same interval and the same delay.
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			if mm.GetLabel()[0].GetValue() != usage.KindAgent {
				continue
			}
			switch {
			case mf.GetName() == "threadbox_sandbox_seconds_total":
				got["seconds"] = mm.GetCounter().GetValue()
			case mf.GetName() == "threadbox_sandbox_stop_delay_seconds":
				got["delay"] = mm.GetHistogram().GetSampleSum()
			}
		}
	}
	require.Equal(t, running.Seconds(), got["seconds"])
	require.Equal(t, late.Seconds(), got["delay"])

	// Only admins, and a period that makes sense.
	resp, body = c.call(http.MethodGet, "/v1/admin/usage?"+query.Encode(), nil)
	requireErr(t, resp, body, 403, "forbidden")
	resp, body = admin.call(http.MethodGet, "/v1/admin/usage?from=2026-03-02&to=2026-03-01", nil)
	requireErr(t, resp, body, 400, "invalid_period")
	resp, body = admin.call(http.MethodGet, "/v1/admin/usage?to=2026-03-01", nil)
	requireErr(t, resp, body, 400, "invalid_period")
}
