package e2e_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestThreadsConcurrencyAndIsolation: one sandbox per thread however many
// concurrent creates or uses; threads of one user share the volume and
// nothing else; users never see each other's threads.
func TestThreadsConcurrencyAndIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: 2 * time.Second, AutoDelete: time.Minute})
	c := newTC(t, env, env.UserKey)
	var raceSandbox string

	t.Run("20 concurrent creates make one sandbox", func(t *testing.T) {
		c := newTC(t, env, env.UserKey)
		var wg sync.WaitGroup
		statuses := make([]int, 20)
		ids := make([]string, 20)
		for i := range 20 {
			wg.Go(func() {
				status, th := c.create("race")
				statuses[i] = status
				if th.SandboxID != nil {
					ids[i] = *th.SandboxID
				}
			})
		}
		wg.Wait()
		created := 0
		for i := range 20 {
			if statuses[i] == http.StatusCreated {
				created++
			}
			require.Equal(t, ids[0], ids[i])
		}
		require.Equal(t, 1, created, "exactly one create answers 201")
		live := liveSandboxes(t, env, env.UserID, "race")
		require.Len(t, live, 1)
		require.Equal(t, ids[0], live[0].ID)
		raceSandbox = ids[0]
		// One command before the stop: the emulator's bubblewrap set-up of a
		// fresh sandbox root races with itself when the very first commands
		// run concurrently (an emulator bug, reported), which is not what
		// this test is about.
		require.Equal(t, 0, c.exec("race", "true").ExitCode)
	})

	t.Run("20 concurrent execs on a stopped thread", func(t *testing.T) {
		c := newTC(t, env, env.UserKey)
		sb := raceSandbox
		require.NotEmpty(t, sb)
		testenv.Eventually(t, 30*time.Second, "the thread to stop", func() bool {
			return sandboxState(t, env, sb) == daytona.StateStopped
		})
		var wg sync.WaitGroup
		results := make([]execJSON, 20)
		for i := range 20 {
			wg.Go(func() { results[i] = c.exec("race", "echo ok") })
		}
		wg.Wait()
		for _, r := range results {
			require.Equal(t, 0, r.ExitCode, r.Output)
			require.Equal(t, "ok\n", r.Output)
		}
		live := liveSandboxes(t, env, env.UserID, "race")
		require.Len(t, live, 1)
		require.Equal(t, sb, live[0].ID)
		require.Equal(t, daytona.StateStarted, live[0].State)
	})

	t.Run("two threads share the volume and nothing else", func(t *testing.T) {
		_, a := c.create("alpha")
		_, b := c.create("beta")
		require.NotEqual(t, *a.SandboxID, *b.SandboxID)
		require.Equal(t, 0, c.exec("alpha", "echo shared > /home/daytona/volume/x && echo private > /home/daytona/y").ExitCode)
		r := c.exec("beta", "cat /home/daytona/volume/x")
		require.Equal(t, 0, r.ExitCode, r.Output)
		require.Equal(t, "shared\n", r.Output)
		r = c.exec("beta", "cat /home/daytona/y")
		require.NotEqual(t, 0, r.ExitCode, "a file outside the volume leaked between threads: %q", r.Output)
		require.Len(t, liveSandboxes(t, env, env.UserID, "alpha"), 1)
		require.Len(t, liveSandboxes(t, env, env.UserID, "beta"), 1)
	})

	t.Run("users cannot reach each other's threads", func(t *testing.T) {
		other := "other-" + env.UserID
		o := newTC(t, env, env.Key(other, false))
		paths := []struct{ method, path, ct, body string }{
			{http.MethodGet, "/v1/threads/alpha", "", ""},
			{http.MethodDelete, "/v1/threads/alpha", "", ""},
			{http.MethodPost, "/v1/threads/alpha/exec", "application/json", `{"command":"echo pwned > /home/daytona/volume/x"}`},
			{http.MethodGet, "/v1/threads/alpha/files?path=/home/daytona/volume/x", "", ""},
			{http.MethodPut, "/v1/threads/alpha/files?path=/home/daytona/volume/x", "application/octet-stream", "pwned"},
			{http.MethodDelete, "/v1/threads/alpha/files?path=/home/daytona/volume/x", "", ""},
			{http.MethodPost, "/v1/threads/alpha/files/move", "application/json", `{"from":"/home/daytona/volume/x","to":"/tmp/x"}`},
			{http.MethodPost, "/v1/threads/alpha/files/download", "application/json", `{"paths":["/home/daytona/volume/x"]}`},
			{http.MethodPost, "/v1/threads/alpha/leases", "application/json", `{"ttl_s":60}`},
			{http.MethodDelete, "/v1/threads/alpha/leases/lease-x", "", ""},
		}
		for _, p := range paths {
			resp, body := o.raw(p.method, p.path, p.ct, stringsReader(p.body))
			requireErr(t, resp, body, http.StatusNotFound, "not_found")
		}
		ct, mp := multipartBody(t, "/home/daytona/volume/x", "pwned")
		resp, body := o.raw(http.MethodPost, "/v1/threads/alpha/files/upload", ct, mp)
		requireErr(t, resp, body, http.StatusNotFound, "not_found")
		resp, body = o.call(http.MethodGet, "/v1/threads", nil)
		require.Equal(t, 200, resp.StatusCode)
		require.JSONEq(t, `{"threads":[]}`, string(body))

		// The same id is the other user's own thread, with its own sandbox
		// and volume.
		status, mine := o.create("alpha")
		require.Equal(t, http.StatusCreated, status)
		require.NotEqual(t, *c.get("alpha").SandboxID, *mine.SandboxID)
		r := o.exec("alpha", "cat /home/daytona/volume/x")
		require.NotEqual(t, 0, r.ExitCode, "volume leaked between users: %q", r.Output)
		require.Equal(t, "shared\n", c.exec("alpha", "cat /home/daytona/volume/x").Output)
		require.Len(t, liveSandboxes(t, env, other, "alpha"), 1)
		require.Len(t, liveSandboxes(t, env, env.UserID, "alpha"), 1)
	})
}

// TestThreadWorkerStopMidCreate: the in-process worker stops while the
// sandbox is being created; after a new worker takes over, the create
// answers and exactly one sandbox exists. (A SIGKILLed worker process is
// TestKilledWorkersCreateIsRetriedWithinTheHeartbeat in cmd/threadbox.)
func TestThreadWorkerStopMidCreate(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: time.Minute, AutoDelete: time.Minute,
		Faults: emulator.Faults{SlowCreate: 2 * time.Second}})
	c := newTC(t, env, env.UserKey)
	type result struct {
		status int
		th     threadJSON
	}
	done := make(chan result, 1)
	go func() {
		status, th := c.create("crash")
		done <- result{status, th}
	}()
	testenv.Eventually(t, 30*time.Second, "the create to reach Daytona", func() bool {
		return len(liveSandboxes(t, env, env.UserID, "crash")) > 0
	})
	env.StopWorker()
	env.StartWorker()
	var res result
	select {
	case res = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("create did not answer after the worker came back")
	}
	require.Equal(t, http.StatusCreated, res.status)
	live := liveSandboxes(t, env, env.UserID, "crash")
	require.Len(t, live, 1)
	require.Equal(t, *res.th.SandboxID, live[0].ID)
	require.Equal(t, "ok\n", c.exec("crash", "echo ok").Output)
	require.Len(t, liveSandboxes(t, env, env.UserID, "crash"), 1)
}
