package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestThreadLifecycle walks one thread through its whole life with
// second-scale intervals: create, exec, idle stop, start on use with the
// same files, idle delete, recreate on use (new sandbox, generation+1) with
// the volume's files still there, and delete.
func TestThreadLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	// AutoDelete is long beside the steps between seeing the sandbox stop and
	// the exec that starts it again (a row update, a request): were it shorter
	// than a loaded machine takes for them, the sandbox would be deleted in
	// between and "a start keeps the sandbox" would fail for want of time.
	env := testenv.New(t, testenv.Options{AutoStop: 2 * time.Second, AutoDelete: 15 * time.Second})
	c := newTC(t, env, env.UserKey)

	status, th := c.create("life")
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "running", th.State)
	require.NotNil(t, th.SandboxID)
	first := *th.SandboxID
	require.Equal(t, daytona.StateStarted, sandboxState(t, env, first))

	r := c.exec("life", "echo hello; echo oops >&2; exit 3")
	require.Equal(t, 3, r.ExitCode)
	require.Contains(t, r.Output, "hello")
	require.Contains(t, r.Output, "oops")
	require.False(t, r.Truncated)

	resp, body := c.raw(http.MethodPut, "/v1/threads/life/files?path=/home/daytona/volume/keep.txt", "application/octet-stream", bytes.NewReader([]byte("in the volume")))
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	require.Equal(t, 0, c.exec("life", "echo local > /home/daytona/local.txt").ExitCode)

	// A second create of the same id answers 200 with the same sandbox.
	status, again := c.create("life")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, first, *again.SandboxID)

	testenv.Eventually(t, 30*time.Second, "the idle sandbox to stop", func() bool {
		return sandboxState(t, env, first) == daytona.StateStopped
	})
	testenv.Eventually(t, 10*time.Second, "the thread row to say stopped", func() bool {
		return c.get("life").State == "stopped"
	})

	r = c.exec("life", "cat /home/daytona/local.txt /home/daytona/volume/keep.txt")
	require.Equal(t, 0, r.ExitCode, r.Output)
	require.Equal(t, "local\nin the volume", r.Output)
	require.Equal(t, daytona.StateStarted, sandboxState(t, env, first))
	th = c.get("life")
	require.Equal(t, first, *th.SandboxID, "a start keeps the sandbox")
	gen := th.Generation

	testenv.Eventually(t, time.Minute, "the stopped sandbox to be deleted", func() bool {
		s := sandboxState(t, env, first)
		return s == "" || s == daytona.StateDestroyed
	})
	require.Empty(t, liveSandboxes(t, env, env.UserID, "life"))

	r = c.exec("life", "cat /home/daytona/volume/keep.txt; test -e /home/daytona/local.txt && echo still-there")
	require.Equal(t, 1, r.ExitCode, r.Output)
	require.Equal(t, "in the volume", r.Output)
	th = c.get("life")
	require.Equal(t, "running", th.State)
	require.NotEqual(t, first, *th.SandboxID, "an auto-deleted thread gets a new sandbox")
	require.Equal(t, gen+1, th.Generation)
	live := liveSandboxes(t, env, env.UserID, "life")
	require.Len(t, live, 1)
	require.Equal(t, *th.SandboxID, live[0].ID)

	// Delete: the sandbox goes, the thread answers 404, and it is listed
	// only with include_deleted.
	resp, body = c.call(http.MethodDelete, "/v1/threads/life", nil)
	require.Contains(t, []int{http.StatusNoContent, http.StatusAccepted}, resp.StatusCode, string(body))
	testenv.Eventually(t, 30*time.Second, "the deleted thread's sandbox to go", func() bool {
		return len(liveSandboxes(t, env, env.UserID, "life")) == 0
	})
	resp, body = c.call(http.MethodGet, "/v1/threads/life", nil)
	requireErr(t, resp, body, http.StatusNotFound, "not_found")
	resp, body = c.call(http.MethodPost, "/v1/threads/life/exec", map[string]string{"command": "true"})
	requireErr(t, resp, body, http.StatusNotFound, "not_found")
	resp, body = c.call(http.MethodGet, "/v1/threads", nil)
	require.Equal(t, 200, resp.StatusCode)
	require.NotContains(t, string(body), `"life"`)
	resp, body = c.call(http.MethodGet, "/v1/threads?include_deleted=true", nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(body), `"thread_id":"life"`)
	require.Contains(t, string(body), `"state":"deleted"`)

	// A deleted thread can be created again; the volume outlived it.
	status, th = c.create("life")
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "running", th.State)
	r = c.exec("life", "cat /home/daytona/volume/keep.txt")
	require.Equal(t, "in the volume", r.Output)
	require.Len(t, liveSandboxes(t, env, env.UserID, "life"), 1)
}

// TestThreadLeaseAndLongCommand: a lease keeps the sandbox running past its
// idle deadline, and a command longer than AutoStop is not cut.
func TestThreadLeaseAndLongCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: 2 * time.Second, AutoDelete: 30 * time.Second})
	c := newTC(t, env, env.UserKey)
	_, th := c.create("long")
	sb := *th.SandboxID

	// sleep 4 with AutoStop 2s: the command's own lease keeps it up.
	start := time.Now()
	r := c.exec("long", "sleep 4; echo done")
	require.Equal(t, 0, r.ExitCode, r.Output)
	require.Equal(t, "done\n", r.Output)
	require.GreaterOrEqual(t, time.Since(start), 4*time.Second)
	// After it, the sandbox idles out as usual.
	testenv.Eventually(t, 30*time.Second, "stop after the long command", func() bool {
		return sandboxState(t, env, sb) == daytona.StateStopped
	})

	// A lease of 6 s: the sandbox is started and stays up past 2 s idle.
	sent := time.Now()
	resp, body := c.call(http.MethodPost, "/v1/threads/long/leases", map[string]int{"ttl_s": 6})
	answered := time.Now()
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	var lease struct {
		LeaseID   string    `json:"lease_id"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	require.NoError(t, jsonUnmarshal(body, &lease))
	require.NotEmpty(t, lease.LeaseID)
	// The lease runs 6s from when the server granted it, between the request's
	// send and its answer (a second's slack for the stored precision).
	requireBetween(t, lease.ExpiresAt, sent.Add(5*time.Second), answered.Add(7*time.Second), "the lease's expiry")
	require.Equal(t, daytona.StateStarted, sandboxState(t, env, sb))
	for time.Now().Before(lease.ExpiresAt.Add(-time.Second)) {
		require.Equal(t, daytona.StateStarted, sandboxState(t, env, sb), "stopped while a lease was live")
		time.Sleep(200 * time.Millisecond)
	}
	testenv.Eventually(t, 30*time.Second, "stop after the lease expired", func() bool {
		return sandboxState(t, env, sb) == daytona.StateStopped
	})

	// Releasing a lease early lets the sandbox stop before its expiry.
	resp, body = c.call(http.MethodPost, "/v1/threads/long/leases", map[string]int{"ttl_s": 600})
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	require.NoError(t, jsonUnmarshal(body, &lease))
	resp, body = c.call(http.MethodDelete, "/v1/threads/long/leases/"+lease.LeaseID, nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, string(body))
	resp, body = c.call(http.MethodDelete, "/v1/threads/long/leases/"+lease.LeaseID, nil)
	requireErr(t, resp, body, http.StatusNotFound, "not_found")
	testenv.Eventually(t, 30*time.Second, "stop after the lease was released", func() bool {
		return sandboxState(t, env, sb) == daytona.StateStopped
	})
}

// TestThreadGetShowsLiveDeadlines checks that GET reports the deadline the
// workflow really holds: a use after creation moves auto_stop_at, although
// the row is only written on transitions.
func TestThreadGetShowsLiveDeadlines(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: 30 * time.Second, AutoDelete: time.Minute})
	c := newTC(t, env, env.UserKey)
	created := time.Now()
	_, th := c.create("deadline")
	require.NotNil(t, th.AutoStopAt, "the create answer has the deadline")
	require.NotNil(t, th.LastActivityAt)
	first := c.get("deadline")
	require.NotNil(t, first.AutoStopAt)
	// The last use is the create, somewhere between its send and the GET's
	// answer (a second's slack for the stored precision).
	requireBetween(t, *first.AutoStopAt, created.Add(29*time.Second), time.Now().Add(31*time.Second), "auto_stop_at")
	require.Equal(t, "running", th.State)
	// The create answers from the workflow's ensure-running result, not a
	// state query: the same instants as the query behind the GET.
	require.True(t, th.AutoStopAt.Equal(*first.AutoStopAt), "create %s, get %s", th.AutoStopAt, first.AutoStopAt)
	require.True(t, th.LastActivityAt.Equal(*first.LastActivityAt), "create %s, get %s", th.LastActivityAt, first.LastActivityAt)

	time.Sleep(1500 * time.Millisecond)
	require.Equal(t, 0, c.exec("deadline", "true").ExitCode)
	testenv.Eventually(t, 30*time.Second, "auto_stop_at to move after a use", func() bool {
		now := c.get("deadline")
		return now.AutoStopAt != nil && now.AutoStopAt.Sub(*first.AutoStopAt) >= time.Second
	})
}

// TestThreadRecoversFromChangesBehindItsBack: Daytona's backstop or an
// operator may stop or delete a sandbox without the workflow knowing. The
// next use must still work: the API names the dead sandbox in its
// ensure-running and the workflow starts it again, or recreates it.
func TestThreadRecoversFromChangesBehindItsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: time.Minute, AutoDelete: 2 * time.Minute})
	c := newTC(t, env, env.UserKey)
	_, th := c.create("behind")
	first := *th.SandboxID
	require.Equal(t, 0, c.exec("behind", "echo kept > /home/daytona/volume/v.txt").ExitCode)

	require.NoError(t, env.Gateway.StopSandbox(context.Background(), first))
	r := c.exec("behind", "cat /home/daytona/volume/v.txt")
	require.Equal(t, 0, r.ExitCode, r.Output)
	require.Equal(t, "kept\n", r.Output)
	require.Equal(t, daytona.StateStarted, sandboxState(t, env, first), "the same sandbox was started again")

	require.NoError(t, env.Gateway.DeleteSandbox(context.Background(), first))
	r = c.exec("behind", "cat /home/daytona/volume/v.txt")
	require.Equal(t, 0, r.ExitCode, r.Output)
	require.Equal(t, "kept\n", r.Output)
	testenv.Eventually(t, 30*time.Second, "the thread to show a new sandbox of the next generation", func() bool {
		now := c.get("behind")
		return now.SandboxID != nil && *now.SandboxID != first && now.Generation > th.Generation
	})
}

// requireBetween fails unless lo <= at <= hi: a time the server chose while
// the test's request was in flight, bracketed by clock readings around it
// rather than by a guess at how long the request took.
func requireBetween(t *testing.T, at, lo, hi time.Time, what string) {
	t.Helper()
	require.False(t, at.Before(lo) || at.After(hi), "%s %s is not between %s and %s", what, at, lo, hi)
}
