package admission_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/admission"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/metrics"
)

func thread(user, id string) entity.Ref {
	return entity.Ref{Kind: entity.KindThread, UserID: user, ThreadID: id}
}

// running records an entity's sandbox as running, as the workflow's
// activities do once it started.
func running(t *testing.T, pool *pgxpool.Pool, ref entity.Ref) {
	t.Helper()
	var thread *string
	if ref.ThreadID != "" {
		thread = &ref.ThreadID
	}
	user := ref.UserID
	require.NoError(t, db.New(pool).UpsertSandbox(context.Background(), db.UpsertSandboxParams{
		SandboxID: uuid.NewString(), Name: "sb-" + uuid.NewString(), SandboxType: ref.Kind.SandboxType(),
		UserID: &user, ThreadID: thread, State: "running",
	}))
}

func limitErr(t *testing.T, err error, limit string) *admission.Error {
	t.Helper()
	var e *admission.Error
	require.True(t, errors.As(err, &e), "want a %s refusal, got %v", limit, err)
	require.Equal(t, limit, e.Limit)
	require.Positive(t, e.RetryAfter)
	return e
}

// Twenty concurrent starts of different threads of one user, through two
// controllers (two API replicas) over one database: exactly the free places
// are admitted while the starts are in flight.
func TestRunningPerUserHoldsAcrossReplicas(t *testing.T) {
	pool, _ := testenv.Database(t)
	limits := admission.Limits{RunningPerUser: 3}
	replicas := []*admission.Controller{
		admission.New(admission.Options{Pool: pool, Limits: limits}),
		admission.New(admission.Options{Pool: pool, Limits: limits}),
	}
	running(t, pool, thread("alice", "already"))

	var admitted atomic.Int32
	var releases sync.Map
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			ref := thread("alice", fmt.Sprint("t", i))
			release, err := replicas[i%2].AdmitSandbox(context.Background(), ref)
			if err != nil {
				limitErr(t, err, admission.SandboxLimit)
				return
			}
			admitted.Add(1)
			releases.Store(i, release)
		})
	}
	wg.Wait()
	require.EqualValues(t, 2, admitted.Load(), "one running + two starting = the limit of three")

	// Another user is not affected; the running one is admitted again at
	// once (its ensure starts nothing).
	release, err := replicas[0].AdmitSandbox(context.Background(), thread("bob", "t0"))
	require.NoError(t, err)
	release()
	release, err = replicas[1].AdmitSandbox(context.Background(), thread("alice", "already"))
	require.NoError(t, err)
	release()

	// A start that is over (failed: nothing recorded running) frees its place.
	releases.Range(func(_, v any) bool { v.(func())(); return false })
	release, err = replicas[0].AdmitSandbox(context.Background(), thread("alice", "next"))
	require.NoError(t, err)
	release()
}

// Files sandboxes count toward the total, not toward the user's limit.
func TestTotalCountsAgentAndFilesSandboxes(t *testing.T) {
	pool, _ := testenv.Database(t)
	c := admission.New(admission.Options{Pool: pool, Limits: admission.Limits{RunningPerUser: 1, RunningTotal: 3}})
	ctx := context.Background()
	running(t, pool, thread("alice", "a1"))
	running(t, pool, entity.Files("alice"))

	_, err := c.AdmitSandbox(ctx, thread("alice", "a2"))
	limitErr(t, err, admission.SandboxLimit)
	release, err := c.AdmitSandbox(ctx, entity.Files("bob"))
	require.NoError(t, err, "bob's files sandbox is the third")
	defer release()
	_, err = c.AdmitSandbox(ctx, thread("carol", "c1"))
	e := limitErr(t, err, admission.TotalSandboxLimit)
	require.EqualValues(t, 3, e.Max)
}

// A claim whose replica died counts only until it expires.
func TestAbandonedClaimsExpire(t *testing.T) {
	pool, _ := testenv.Database(t)
	c := admission.New(admission.Options{Pool: pool, Limits: admission.Limits{RunningTotal: 1}})
	ctx := context.Background()
	_, err := c.AdmitSandbox(ctx, thread("alice", "a1")) // never released
	require.NoError(t, err)
	_, err = c.AdmitSandbox(ctx, thread("bob", "b1"))
	limitErr(t, err, admission.TotalSandboxLimit)
	_, err = pool.Exec(ctx, "UPDATE sandbox_claims SET expires_at = now() - interval '1 second'")
	require.NoError(t, err)
	release, err := c.AdmitSandbox(ctx, thread("bob", "b1"))
	require.NoError(t, err)
	release()
	var claims int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM sandbox_claims").Scan(&claims))
	require.Zero(t, claims, "expired claims are swept, released ones deleted")
}

// The Retry-After of a sandbox limit is the time until the user's next
// auto-stop.
func TestSandboxLimitRetryAfterIsTheNextAutoStop(t *testing.T) {
	pool, _ := testenv.Database(t)
	c := admission.New(admission.Options{Pool: pool, Limits: admission.Limits{RunningPerUser: 1}})
	ctx := context.Background()
	running(t, pool, thread("alice", "a1"))
	_, err := pool.Exec(ctx, `INSERT INTO threads (user_id, thread_id, state, auto_stop_at) VALUES ('alice', 'a1', 'running', now() + interval '90 seconds')`)
	require.NoError(t, err)
	_, err = c.AdmitSandbox(ctx, thread("alice", "a2"))
	e := limitErr(t, err, admission.SandboxLimit)
	require.InDelta(t, 90, e.RetryAfter.Seconds(), 5)
}

func TestThreadLimitHoldsUnderConcurrentCreates(t *testing.T) {
	pool, _ := testenv.Database(t)
	limits := admission.Limits{ThreadsPerUser: 4}
	a := admission.New(admission.Options{Pool: pool, Limits: limits})
	b := admission.New(admission.Options{Pool: pool, Limits: limits})
	ctx := context.Background()

	var created atomic.Int32
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			c := []*admission.Controller{a, b}[i%2]
			ok, err := c.CreateThread(ctx, "alice", fmt.Sprint("t", i))
			if err != nil {
				limitErr(t, err, admission.ThreadLimit)
				return
			}
			require.True(t, ok)
			created.Add(1)
		})
	}
	wg.Wait()
	require.EqualValues(t, 4, created.Load())

	// An existing live thread is not a new one; a deleted one frees a place.
	var existing string
	require.NoError(t, pool.QueryRow(ctx, "SELECT thread_id FROM threads WHERE user_id = 'alice' LIMIT 1").Scan(&existing))
	ok, err := a.CreateThread(ctx, "alice", existing)
	require.NoError(t, err)
	require.False(t, ok)
	_, err = a.CreateThread(ctx, "alice", "one-more")
	limitErr(t, err, admission.ThreadLimit)
	n, err := db.New(pool).APIMarkThreadDeleted(ctx, db.APIMarkThreadDeletedParams{UserID: "alice", ThreadID: existing})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	ok, err = a.CreateThread(ctx, "alice", "one-more")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = a.CreateThread(ctx, "bob", "t0")
	require.NoError(t, err, "other users have their own limit")
	require.True(t, ok)
}

func TestRateLimitIsATokenBucketPerKey(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	c := admission.New(admission.Options{Limits: admission.Limits{RequestsPerSecond: 10, Burst: 5}, Now: clock.Now})
	k1, k2 := uuid.New(), uuid.New()
	for range 5 {
		require.NoError(t, c.Allow(k1))
	}
	e := limitErr(t, c.Allow(k1), admission.RateLimit)
	require.Equal(t, 100*time.Millisecond, e.RetryAfter, "one token every 100 ms")
	require.NoError(t, c.Allow(k2), "another key has its own bucket")
	for range 10 {
		require.Error(t, c.Allow(k1), "refused requests take nothing from the bucket, so retrying early never succeeds")
	}
	clock.Add(100 * time.Millisecond)
	require.NoError(t, c.Allow(k1))
	require.Error(t, c.Allow(k1))

	off := admission.New(admission.Options{Limits: admission.Limits{}})
	for range 1000 {
		require.NoError(t, off.Allow(k1), "0 is no limit")
	}
}

func TestMetricsShowLimitsUsageAndRefusals(t *testing.T) {
	pool, _ := testenv.Database(t)
	c := admission.New(admission.Options{Pool: pool, Limits: admission.Limits{ThreadsPerUser: 2, RunningPerUser: 1, RunningTotal: 10, RequestsPerSecond: 1, Burst: 1}})
	reg := prometheus.NewRegistry()
	require.NoError(t, c.Register(reg))
	ctx := context.Background()
	running(t, pool, thread("alice", "a1"))
	running(t, pool, entity.Files("bob"))
	for _, id := range []string{"a1", "a2"} {
		_, err := c.CreateThread(ctx, "alice", id)
		require.NoError(t, err)
	}
	_, err := c.CreateThread(ctx, "alice", "a3")
	limitErr(t, err, admission.ThreadLimit)
	_, err = c.AdmitSandbox(ctx, thread("alice", "a2"))
	limitErr(t, err, admission.SandboxLimit)

	got, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, got)
	for name, want := range map[string]float64{
		metrics.AdmissionLimit + `{limit="thread_limit"}`:         2,
		metrics.AdmissionLimit + `{limit="sandbox_limit"}`:        1,
		metrics.AdmissionLimit + `{limit="total_sandbox_limit"}`:  10,
		metrics.AdmissionLimit + `{limit="rate_limited"}`:         1,
		metrics.AdmissionUsage + `{limit="total_sandbox_limit"}`:  2,
		metrics.AdmissionUsage + `{limit="sandbox_limit"}`:        1,
		metrics.AdmissionUsage + `{limit="thread_limit"}`:         2,
		metrics.AdmissionUsersAtLimit + `{limit="sandbox_limit"}`: 1,
		metrics.AdmissionUsersAtLimit + `{limit="thread_limit"}`:  1,
		metrics.AdmissionRefused + `{limit="thread_limit"}`:       1,
		metrics.AdmissionRefused + `{limit="sandbox_limit"}`:      1,
	} {
		require.InDelta(t, want, gather(t, reg, name), 0, name)
	}
}

// gather reads one series ("name{label=\"value\"}") from reg.
func gather(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			s := f.GetName()
			if len(m.GetLabel()) > 0 {
				s += "{"
				for i, l := range m.GetLabel() {
					if i > 0 {
						s += ","
					}
					s += l.GetName() + `="` + l.GetValue() + `"`
				}
				s += "}"
			}
			if s != series {
				continue
			}
			if m.Gauge != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

// BenchmarkAdmission is what admission adds to a thread create: the row
// within the thread limit, and the sandbox admission of its first ensure
// (claim and release).
func BenchmarkAdmission(b *testing.B) {
	pool, _ := testenv.Database(b)
	c := admission.New(admission.Options{Pool: pool, Limits: admission.Limits{ThreadsPerUser: 1 << 30, RunningPerUser: 1 << 30, RunningTotal: 1 << 30}})
	ctx := context.Background()
	b.Run("create-thread", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := c.CreateThread(ctx, "alice", fmt.Sprint("t", i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("admit-sandbox", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			release, err := c.AdmitSandbox(ctx, thread("alice", fmt.Sprint("s", i)))
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
}
