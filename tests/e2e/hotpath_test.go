package e2e_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestWarmExecMakesNoTemporalRoundTrip is the hot path's promise as a test
// (tests/bench/threads only printed it): once a thread's sandbox is known
// to be running, its execs and file reads go to the sandbox directly; the
// workflow sees no ensure-running update (WorkflowExecutionUpdateAccepted in
// its history), only the debounced touch signals that keep it from idling.
// Breaking the client's cache (sandbox.Client.Use asking the workflow every
// time) fails it.
func TestWarmExecMakesNoTemporalRoundTrip(t *testing.T) {
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Minute, AutoDelete: time.Hour})
	c := newTC(t, env, env.UserKey)
	c.create("warm")
	c.exec("warm", "true") // the first use after the create may ask the workflow
	wfID := entity.Thread(env.UserID, "warm").WorkflowID()
	before := env.AcceptedUpdates(wfID)
	require.Positive(t, before, "the create went through an update (the count sees them)")

	for i := range 30 {
		if i%3 == 2 {
			resp, body := c.call(http.MethodGet, "/v1/threads/warm/files?path=/home/daytona", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			continue
		}
		require.Equal(t, 0, c.exec("warm", "true").ExitCode)
	}
	require.Equal(t, before, env.AcceptedUpdates(wfID), "a warm thread's execs and reads made no ensure-running update")
}

// TestColdUseSendsNoTouchAtOnce: an ensure-running reports its use to the
// workflow, so the use's trailing touch is debounced from it (touchEvery,
// AutoStop/10 = 1 min here) instead of signalling at once. Before, every
// create was followed by a touch signal and a workflow task that ran beside
// the thread's first exec. Breaking the debounce (store not counting the
// ensure as a report) fails it.
func TestColdUseSendsNoTouchAtOnce(t *testing.T) {
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Minute, AutoDelete: time.Hour})
	c := newTC(t, env, env.UserKey)
	c.create("cold")
	require.Equal(t, 0, c.exec("cold", "true").ExitCode)
	wfID := entity.Thread(env.UserID, "cold").WorkflowID()
	// Before the fix the touch was sent as the create returned; two seconds
	// is far beyond that and far short of the one-minute debounce.
	time.Sleep(2 * time.Second)
	require.Zero(t, env.HistoryEvents(wfID, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
		"no touch signal within touchEvery of the create's ensure-running")
}
