package e2e_test

import (
	"context"
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
	before := ensureUpdates(t, env, wfID)
	require.Positive(t, before, "the create went through an update (the count sees them)")

	for i := range 30 {
		if i%3 == 2 {
			resp, body := c.call(http.MethodGet, "/v1/threads/warm/files?path=/home/daytona", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			continue
		}
		require.Equal(t, 0, c.exec("warm", "true").ExitCode)
	}
	require.Equal(t, before, ensureUpdates(t, env, wfID), "a warm thread's execs and reads made no ensure-running update")
}

// ensureUpdates counts the updates the thread's workflow accepted.
func ensureUpdates(t *testing.T, env *testenv.Env, wfID string) int {
	t.Helper()
	it := env.Temporal.GetWorkflowHistory(context.Background(), wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED {
			n++
		}
	}
	return n
}
