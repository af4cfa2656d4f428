package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/workflows"
)

func TestReconcilerDeletesOrphansAndKeepsTrackedSandboxes(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	c, _ := testenv.Temporal(t)
	f.acts.Temporal = c
	tq := "reconcile-" + uuid.NewString()
	w := sdkworker.New(c, tq, sdkworker.Options{})
	workflows.Register(w)
	f.acts.Register(w)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	// A tracked sandbox: a real thread workflow created it.
	in := entity.Input{Kind: entity.KindThread, UserID: "dave", ThreadID: "kept",
		Config: entity.Config{AutoStop: time.Hour, AutoDelete: time.Hour}}
	tracked := ensureThread(ctx, t, c, tq, in)

	// An orphan: created for a thread whose workflow does not exist.
	orphan, err := f.acts.EnsureSandbox(ctx, threadInput("dave", "gone", 1))
	require.NoError(t, err)
	// An orphan of a live thread: the thread row lives on (its workflow will
	// create the next generation on its next use) while an old generation's
	// sandbox was left behind. Recording the orphan's deletion must not touch
	// the live thread's row.
	live, err := f.q.CreateThread(ctx, db.CreateThreadParams{UserID: "dave", ThreadID: "live"})
	require.NoError(t, err)
	liveOrphan, err := f.acts.EnsureSandbox(ctx, threadInput("dave", "live", 1))
	require.NoError(t, err)
	// A young orphan inside the grace period is left alone.
	res, err := f.acts.ReconcileSandboxes(ctx, activities.ReconcileInput{GracePeriod: time.Hour})
	require.NoError(t, err)
	assert.Empty(t, res.Deleted)
	assert.Equal(t, 3, res.Checked)

	res, err = f.acts.ReconcileSandboxes(ctx, activities.ReconcileInput{GracePeriod: 0})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{orphan.SandboxID, liveOrphan.SandboxID}, res.Deleted)
	for _, id := range []string{orphan.SandboxID, liveOrphan.SandboxID} {
		_, err = f.gw.GetSandbox(ctx, id)
		assert.ErrorIs(t, err, daytona.ErrNotFound)
	}
	after, err := f.q.GetThread(ctx, db.GetThreadParams{UserID: "dave", ThreadID: "live"})
	require.NoError(t, err)
	assert.Equal(t, live, after, "the live thread's row is untouched")
	events, err := f.q.ListLifecycleEvents(ctx, db.ListLifecycleEventsParams{EntityKind: string(entity.KindThread), UserID: "dave", EntityID: "live"})
	require.NoError(t, err)
	require.Len(t, events, 1, "the deletion is in the ledger")
	assert.Equal(t, "orphan_deleted", events[0].Event)
	assert.Equal(t, liveOrphan.SandboxID, events[0].SandboxID)
	sb, err := f.gw.GetSandbox(ctx, tracked.SandboxID)
	require.NoError(t, err)
	assert.Equal(t, daytona.StateStarted, sb.State, "the tracked sandbox is untouched")

	// Once its workflow is gone (user delete that could not reach Daytona is
	// simulated by terminating the run), the sandbox is an orphan too.
	require.NoError(t, c.TerminateWorkflow(ctx, entity.Thread("dave", "kept").WorkflowID(), "", "test"))
	res, err = f.acts.ReconcileSandboxes(ctx, activities.ReconcileInput{})
	require.NoError(t, err)
	assert.Equal(t, []string{tracked.SandboxID}, res.Deleted)
}

func TestEntityWorkflowIDsMatchTheWorkflowsPackage(t *testing.T) {
	// The reconciler derives workflow ids from labels without importing
	// workflows; ReconcileSandboxes relies on this format.
	assert.Equal(t, "thread:u:t", entity.Thread("u", "t").WorkflowID())
	assert.Equal(t, "files:u", entity.Files("u").WorkflowID())
	assert.Equal(t, "state", entity.QueryState)
}

// ensureThread runs ensure-running as Update-With-Start, as the API does.
func ensureThread(ctx context.Context, t *testing.T, c client.Client, tq string, in entity.Input) entity.EnsureResult {
	t.Helper()
	op := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: entity.Thread(in.UserID, in.ThreadID).WorkflowID(), TaskQueue: tq,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, entity.ThreadWorkflowName, in)
	reqID := uuid.NewString()
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{UpdateName: entity.UpdateEnsureRunning, UpdateID: reqID,
			WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{entity.EnsureRequest{RequestID: reqID}}},
	})
	require.NoError(t, err)
	var res entity.EnsureResult
	require.NoError(t, h.Get(ctx, &res))
	return res
}
