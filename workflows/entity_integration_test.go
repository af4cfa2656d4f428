package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestEntityConcurrentEnsuresMakeOneSandbox: many API requests racing to use
// a new thread (Update-With-Start on a real Temporal server, real activities
// against the emulator) get one workflow and one sandbox.
func TestEntityConcurrentEnsuresMakeOneSandbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRecorder(t)
	in := entity.Input{Kind: entity.KindThread, UserID: "race-user", ThreadID: "race",
		Config: entity.Config{AutoStop: time.Minute, AutoDelete: time.Minute}}
	id := entity.Thread(in.UserID, in.ThreadID).WorkflowID()

	const n = 8
	results := make([]entity.EnsureResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.ensure(ctx, id, entity.ThreadWorkflowName, in, nil)
		}()
	}
	wg.Wait()
	created := 0
	for _, res := range results {
		assert.Equal(t, results[0].SandboxID, res.SandboxID)
		if res.Created {
			created++
		}
	}
	assert.GreaterOrEqual(t, created, 1)
	list, err := r.gw.ListSandboxes(ctx, map[string]string{daytona.LabelThread: "race"})
	require.NoError(t, err)
	require.Len(t, list, 1, "one thread, one sandbox")

	v, err := r.c.QueryWorkflow(ctx, id, "", entity.QueryState)
	require.NoError(t, err)
	var st entity.State
	require.NoError(t, v.Get(&st))
	assert.Equal(t, entity.PhaseRunning, st.Phase)
	assert.Equal(t, results[0].SandboxID, st.SandboxID)
	r.delete(ctx, id)
	_, err = r.gw.GetSandbox(ctx, results[0].SandboxID)
	assert.ErrorIs(t, err, daytona.ErrNotFound, "delete destroys the sandbox")
}

// TestEntityDeleteReachesAWorkflowStuckInASlowCreate (issue 12, finding 5):
// while Daytona is slow to create a sandbox, abandoned ensure-running calls
// fill the workflow's ten in-flight update slots and a delete sent as an
// update is refused (ResourceExhausted). The delete signal still gets
// through: it cancels the create, destroys the sandbox once Daytona lets it,
// and ends the workflow. Real Temporal, real activities, the emulator with a
// slow create.
func TestEntityDeleteReachesAWorkflowStuckInASlowCreate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRecorderWith(t, recorderOptions{faults: emulator.Faults{SlowCreate: 20 * time.Second}})
	in := entity.Input{Kind: entity.KindThread, UserID: "slow-user", ThreadID: "slow",
		Config: entity.Config{AutoStop: time.Minute, AutoDelete: time.Minute}}
	id := entity.Thread(in.UserID, in.ThreadID).WorkflowID()
	start := client.StartWorkflowOptions{ID: id, TaskQueue: r.tq, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}

	// Callers that give up after a while, as API requests do: their updates
	// stay in flight on the server while the create is stuck.
	errs := make([]error, 12)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Long enough for every caller to reach the server on a loaded
			// machine, far shorter than the create.
			uctx, ucancel := context.WithTimeout(ctx, 8*time.Second)
			defer ucancel()
			reqID := uuid.NewString()
			h, err := r.c.UpdateWithStartWorkflow(uctx, client.UpdateWithStartWorkflowOptions{
				StartWorkflowOperation: r.c.NewWithStartWorkflowOperation(start, entity.ThreadWorkflowName, in),
				UpdateOptions: client.UpdateWorkflowOptions{UpdateName: entity.UpdateEnsureRunning, UpdateID: reqID,
					WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{entity.EnsureRequest{RequestID: reqID}}},
			})
			if err == nil {
				err = h.Get(uctx, nil)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.Error(t, err, "no ensure can finish while the create is stuck")
	}
	// Temporal allows ten updates in flight per workflow; the Go client
	// retries the ResourceExhausted answers to the others until its
	// deadline.
	testenv.Eventually(t, 10*time.Second, "the slow create fills the update slots", func() bool {
		return inFlightUpdates(ctx, t, r.c, id) == 10
	})

	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	_, err := r.c.UpdateWorkflow(dctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: entity.UpdateDelete,
		UpdateID: uuid.NewString(), WaitForStage: client.WorkflowUpdateStageAccepted, Args: []any{entity.DeleteRequest{}}})
	dcancel()
	require.Error(t, err, "a delete update has no slot left")

	sent := time.Now()
	_, err = r.c.SignalWithStartWorkflow(ctx, id, entity.SignalDelete, entity.DeleteRequest{RequestID: uuid.NewString(), Cause: "user_delete"},
		start, entity.ThreadWorkflowName, in)
	require.NoError(t, err)
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	require.NoError(t, r.c.GetWorkflow(wctx, id, "").Get(wctx, nil), "the delete ends the workflow")
	t.Logf("workflow closed %s after the delete signal", time.Since(sent).Round(time.Millisecond))

	testenv.Eventually(t, 30*time.Second, "no sandbox left for the thread", func() bool {
		list, err := r.gw.ListSandboxes(ctx, map[string]string{daytona.LabelThread: in.ThreadID})
		if err != nil {
			return false
		}
		for _, sb := range list {
			if sb.State != daytona.StateDestroyed && sb.State != daytona.StateDestroying {
				return false
			}
		}
		return true
	})
}

// inFlightUpdates counts the updates a workflow accepted and has not
// completed yet.
func inFlightUpdates(ctx context.Context, t *testing.T, c client.Client, id string) int {
	t.Helper()
	n := 0
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		switch ev.EventType {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			n++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
			n--
		}
	}
	return n
}
