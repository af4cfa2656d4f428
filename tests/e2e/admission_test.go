package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/internal/testenv"
)

// requireRetryAfter checks a 429's Retry-After: whole seconds, at least 1.
func requireRetryAfter(t *testing.T, resp *http.Response) {
	t.Helper()
	n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", resp.Header.Get("Retry-After"))
	require.GreaterOrEqual(t, n, 1)
}

// admissionEnv is a whole system with small sandbox limits and an idle
// interval long enough that nothing stops on its own during the test.
func admissionEnv(t *testing.T, configure func(*config.Config)) *testenv.Env {
	return testenv.New(t, testenv.Options{AutoStop: 2 * time.Minute, AutoDelete: 4 * time.Minute, FilesAutoStop: 2 * time.Minute,
		Configure: configure})
}

// A user at the running-sandbox limit gets 429 sandbox_limit with
// Retry-After, and no sandbox (theirs or anyone else's) is stopped to make
// room. At the total limit every newcomer gets 429 total_sandbox_limit, a
// files sandbox too.
func TestSandboxLimitsRefuseWithoutStoppingAnyone(t *testing.T) {
	env := admissionEnv(t, func(c *config.Config) { c.MaxRunningSandboxesPerUser, c.MaxRunningSandboxes = 2, 4 })
	alice := newTC(t, env, env.UserKey)
	bob := newTC(t, env, env.Key("bob", false))
	carol := newTC(t, env, env.Key("carol", false))

	_, b1 := bob.create("b1")
	_, a1 := alice.create("a1")
	_, a2 := alice.create("a2")
	before := []string{*b1.SandboxID, *a1.SandboxID, *a2.SandboxID}

	resp, body := alice.call(http.MethodPost, "/v1/threads", map[string]string{"thread_id": "a3"})
	requireErr(t, resp, body, http.StatusTooManyRequests, "sandbox_limit")
	requireRetryAfter(t, resp)
	for _, id := range before {
		require.Equal(t, daytona.StateStarted, sandboxState(t, env, id), "sandbox %s still runs", id)
	}
	require.Empty(t, liveSandboxes(t, env, env.UserID, "a3"), "no sandbox was made for the refused thread")
	resp, body = alice.call(http.MethodGet, "/v1/threads/a3", nil)
	requireErr(t, resp, body, http.StatusNotFound, "not_found") // a refused create leaves no thread behind
	require.Equal(t, 0, alice.exec("a1", "true").ExitCode, "alice's running threads still serve")

	// The total: carol takes the fourth place; then bob's second thread and
	// bob's files sandbox are refused, and still nobody is stopped.
	_, c1 := carol.create("c1")
	resp, body = bob.call(http.MethodPost, "/v1/threads", map[string]string{"thread_id": "b2"})
	requireErr(t, resp, body, http.StatusTooManyRequests, "total_sandbox_limit")
	requireRetryAfter(t, resp)
	davResp, davBody := fdo(t, env, bob.key, "PROPFIND", "/dav/", nil, map[string]string{"Depth": "1"})
	require.Equal(t, http.StatusTooManyRequests, davResp.StatusCode, davBody)
	require.Contains(t, davBody, "total_sandbox_limit")
	requireRetryAfter(t, davResp)
	for _, id := range append(before, *c1.SandboxID) {
		require.Equal(t, daytona.StateStarted, sandboxState(t, env, id), "sandbox %s still runs", id)
	}

	// Deleting a thread frees its places.
	resp, body = alice.call(http.MethodDelete, "/v1/threads/a1", nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, string(body))
	status, _ := alice.create("a3")
	require.Equal(t, http.StatusCreated, status)
}

// Ten concurrent creates by one user through two API replicas over one
// database admit exactly the user's limit: the count lives in PostgreSQL.
func TestSandboxLimitHoldsAcrossReplicas(t *testing.T) {
	env := admissionEnv(t, func(c *config.Config) { c.MaxRunningSandboxesPerUser = 3 })
	second, err := api.New(api.Deps{Config: env.Config, Pool: env.Pool, Temporal: env.Temporal, Daytona: env.Gateway, Logger: env.Logger})
	require.NoError(t, err)
	ts := httptest.NewServer(second.Handler())
	t.Cleanup(func() { ts.Close(); second.Close() })
	replicas := []tc{newTC(t, env, env.UserKey), {t: t, env: &testenv.Env{URL: ts.URL, HTTP: env.HTTP}, key: env.UserKey}}

	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			resp, body := replicas[i%2].call(http.MethodPost, "/v1/threads", map[string]string{"thread_id": fmt.Sprint("t", i)})
			if resp.StatusCode == http.StatusTooManyRequests {
				requireErr(t, resp, body, http.StatusTooManyRequests, "sandbox_limit")
			}
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, map[int]int{http.StatusCreated: 3, http.StatusTooManyRequests: 7}, codes)
	require.Len(t, sandboxesOf(t, env, env.UserID, "agent"), 3)
}

// The N+1th live thread of a user is refused with 429 thread_limit and
// Retry-After; an existing thread is still answered, and a delete frees a
// place.
func TestThreadLimit(t *testing.T) {
	env := admissionEnv(t, func(c *config.Config) { c.MaxThreadsPerUser = 2 })
	alice := newTC(t, env, env.UserKey)
	for _, id := range []string{"t1", "t2"} {
		status, _ := alice.create(id)
		require.Equal(t, http.StatusCreated, status)
	}
	resp, body := alice.call(http.MethodPost, "/v1/threads", map[string]string{"thread_id": "t3"})
	requireErr(t, resp, body, http.StatusTooManyRequests, "thread_limit")
	requireRetryAfter(t, resp)
	resp, body = alice.call(http.MethodPost, "/v1/threads", nil) // a generated id is a new thread too
	requireErr(t, resp, body, http.StatusTooManyRequests, "thread_limit")

	status, _ := alice.create("t1")
	require.Equal(t, http.StatusOK, status, "an existing thread is not a new one")
	status, _ = newTC(t, env, env.Key("bob", false)).create("t1")
	require.Equal(t, http.StatusCreated, status, "the limit is per user")

	resp, body = alice.call(http.MethodDelete, "/v1/threads/t2", nil)
	require.Contains(t, []int{http.StatusNoContent, http.StatusAccepted}, resp.StatusCode, string(body))
	status, _ = alice.create("t3")
	require.Equal(t, http.StatusCreated, status)
}

// Every request that would start a stopped thread's sandbox is admitted:
// an exec and a lease on a stopped thread of a user at the limit get 429
// sandbox_limit, and the stopped sandbox stays stopped.
func TestStartingAStoppedThreadIsAdmitted(t *testing.T) {
	env := testenv.New(t, testenv.Options{AutoStop: 3 * time.Second, AutoDelete: 5 * time.Minute,
		Configure: func(c *config.Config) { c.MaxRunningSandboxesPerUser = 1 }})
	alice := newTC(t, env, env.UserKey)
	_, a1 := alice.create("a1")
	// Admission counts what the workflow recorded, which follows Daytona's
	// stop by the stop activity's own write.
	testenv.Eventually(t, 30*time.Second, "a1 stopped and recorded stopped", func() bool {
		var running int
		require.NoError(t, env.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM running_sandboxes WHERE user_id = $1 AND sandbox_type = 'agent'`, env.UserID).Scan(&running))
		return sandboxState(t, env, *a1.SandboxID) == daytona.StateStopped && running == 0
	})
	alice.create("a2")
	resp, body := alice.call(http.MethodPost, "/v1/threads/a2/leases", map[string]any{"ttl_s": 120})
	require.Equal(t, http.StatusCreated, resp.StatusCode, "a lease on the running thread: %s", body)

	resp, body = alice.call(http.MethodPost, "/v1/threads/a1/leases", map[string]any{"ttl_s": 120})
	requireErr(t, resp, body, http.StatusTooManyRequests, "sandbox_limit")
	requireRetryAfter(t, resp)
	resp, body = alice.call(http.MethodPost, "/v1/threads/a1/exec", map[string]any{"command": "true"})
	requireErr(t, resp, body, http.StatusTooManyRequests, "sandbox_limit")
	resp, body = alice.call(http.MethodGet, "/v1/threads/a1/files?path=/home/daytona", nil)
	requireErr(t, resp, body, http.StatusTooManyRequests, "sandbox_limit")
	require.Equal(t, daytona.StateStopped, sandboxState(t, env, *a1.SandboxID))
	require.Equal(t, "stopped", alice.get("a1").State, "the refused thread is still there, stopped")
}
