package activities_test

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
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

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
	tq, _ := startWorker(t, f, c)

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
	live, err := f.q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: "dave", ThreadID: "live"})
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
	after, err := f.q.APIGetThread(ctx, db.APIGetThreadParams{UserID: "dave", ThreadID: "live"})
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

// A user delete whose signal never reached the workflow (Temporal was
// unreachable after the API marked the row deleted) is sent again by the
// next pass, and the workflow deletes its sandbox and ends.
func TestReconcilerRedeliversAUserDeleteTheWorkflowMissed(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	c, _ := testenv.Temporal(t)
	tq, _ := startWorker(t, f, c)

	in := entity.Input{Kind: entity.KindThread, UserID: "erin", ThreadID: "missed",
		Config: entity.Config{AutoStop: time.Hour, AutoDelete: time.Hour}}
	_, err := f.q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: in.UserID, ThreadID: in.ThreadID})
	require.NoError(t, err)
	tracked := ensureThread(ctx, t, c, tq, in)
	n, err := f.q.APIMarkThreadDeleted(ctx, db.APIMarkThreadDeletedParams{UserID: in.UserID, ThreadID: in.ThreadID})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	res, err := f.acts.ReconcileSandboxes(ctx, activities.ReconcileInput{})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Redelivered)
	assert.Empty(t, res.Deleted, "the workflow deletes its own sandbox")
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, c.GetWorkflow(wctx, entity.Thread(in.UserID, in.ThreadID).WorkflowID(), "").Get(wctx, nil), "the delete ends the workflow")
	_, err = f.gw.GetSandbox(ctx, tracked.SandboxID)
	assert.ErrorIs(t, err, daytona.ErrNotFound, "its sandbox is gone")

	// A live thread's tracked sandbox is not touched by the same pass.
	live := entity.Input{Kind: entity.KindThread, UserID: "erin", ThreadID: "live",
		Config: entity.Config{AutoStop: time.Hour, AutoDelete: time.Hour}}
	_, err = f.q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: live.UserID, ThreadID: live.ThreadID})
	require.NoError(t, err)
	kept := ensureThread(ctx, t, c, tq, live)
	res, err = f.acts.ReconcileSandboxes(ctx, activities.ReconcileInput{})
	require.NoError(t, err)
	assert.Zero(t, res.Redelivered)
	assert.Empty(t, res.Deleted)
	sb, err := f.gw.GetSandbox(ctx, kept.SandboxID)
	require.NoError(t, err)
	assert.Equal(t, daytona.StateStarted, sb.State)
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

// startWorker runs the workflows and f's activities on a fresh task queue of
// c, until the test ends (or stop is called).
func startWorker(t *testing.T, f *fixture, c client.Client) (tq string, stop func()) {
	t.Helper()
	f.acts.Temporal = c
	tq = "reconcile-" + uuid.NewString()
	w := sdkworker.New(c, tq, sdkworker.Options{})
	workflows.Register(w)
	w.RegisterWorkflow(reconcileWithShortHeartbeats)
	f.acts.Register(w)
	require.NoError(t, w.Start())
	var once sync.Once
	stop = func() { once.Do(w.Stop) }
	t.Cleanup(stop)
	return tq, stop
}

// TestReconcilerKeepsGenerationsAWorkflowMayStillAdopt (issue 12, finding
// 6): a running thread workflow adopts, by its deterministic name, the
// sandbox of a generation above its own (a create whose result was lost, or
// that is in flight), so the reconciler must leave it alone; a generation
// below, which the workflow can never use again, is an orphan.
func TestReconcilerKeepsGenerationsAWorkflowMayStillAdopt(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	c, _ := testenv.Temporal(t)
	tq, _ := startWorker(t, f, c)

	// A sandbox of the thread's earlier life, then the thread (re)created.
	earlier, err := f.acts.EnsureSandbox(ctx, threadInput("fay", "t", 1))
	require.NoError(t, err)
	_, err = f.q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: "fay", ThreadID: "t"})
	require.NoError(t, err)
	in := entity.Input{Kind: entity.KindThread, UserID: "fay", ThreadID: "t",
		Config: entity.Config{AutoStop: time.Hour, AutoDelete: time.Hour}}
	current := ensureThread(ctx, t, c, tq, in)
	require.Equal(t, 2, current.Generation)
	// The next generation, as a create whose result was lost leaves it.
	next, err := f.acts.EnsureSandbox(ctx, threadInput("fay", "t", 3))
	require.NoError(t, err)
	require.Equal(t, 3, next.Generation)

	res, err := f.acts.ReconcileSandboxes(ctx, activities.ReconcileInput{GracePeriod: 0})
	require.NoError(t, err)
	assert.Equal(t, []string{earlier.SandboxID}, res.Deleted)
	assert.Zero(t, res.Skipped)
	for _, id := range []string{current.SandboxID, next.SandboxID} {
		_, err := f.gw.GetSandbox(ctx, id)
		assert.NoError(t, err, "sandbox %s must be kept", id)
	}
}

// TestReconcilerAsksDescribeNotTheWorkflow (issue 12, finding 7): whether a
// running workflow holds a sandbox is answered by Describe's SandboxId
// search attribute, without querying the workflow (a query needs a worker
// and may replay the whole history). With no worker at all the pass still
// decides every sandbox.
func TestReconcilerAsksDescribeNotTheWorkflow(t *testing.T) {
	f := newFixture(t)
	c, _ := testenv.Temporal(t)
	tq, stopWorker := startWorker(t, f, c)
	ctx := testCtx(t)
	in := entity.Input{Kind: entity.KindThread, UserID: "gus", ThreadID: "kept",
		Config: entity.Config{AutoStop: time.Hour, AutoDelete: time.Hour}}
	tracked := ensureThread(ctx, t, c, tq, in)
	orphan, err := f.acts.EnsureSandbox(ctx, threadInput("gus", "gone", 1))
	require.NoError(t, err)
	stopWorker()

	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := f.acts.ReconcileSandboxes(rctx, activities.ReconcileInput{GracePeriod: 0})
	require.NoError(t, err)
	assert.Equal(t, []string{orphan.SandboxID}, res.Deleted)
	assert.Zero(t, res.Skipped, "every sandbox decided without a worker")
	_, err = f.gw.GetSandbox(ctx, tracked.SandboxID)
	assert.NoError(t, err)
}

// TestReconcilerHeartbeatsWhileDeleting (issue 12, finding 7): one Daytona
// delete can outlast the reconciler's heartbeat timeout, so the activity must
// heartbeat all through each delete, not only between sandboxes. Here a
// delete takes 3 s and the heartbeat timeout is 1.5 s (real Temporal).
func TestReconcilerHeartbeatsWhileDeleting(t *testing.T) {
	f := newFixtureWith(t, 3*time.Second)
	ctx := testCtx(t)
	c, _ := testenv.Temporal(t)
	tq, _ := startWorker(t, f, c)
	orphan, err := f.acts.EnsureSandbox(ctx, threadInput("hal", "gone", 1))
	require.NoError(t, err)

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "reconcile-" + uuid.NewString(), TaskQueue: tq},
		reconcileWithShortHeartbeats, activities.ReconcileInput{})
	require.NoError(t, err)
	var res activities.ReconcileResult
	require.NoError(t, run.Get(ctx, &res), "the pass must not time out on its heartbeat while Daytona deletes")
	assert.Equal(t, []string{orphan.SandboxID}, res.Deleted)
}

// reconcileWithShortHeartbeats runs one reconcile pass with a heartbeat
// timeout shorter than one Daytona delete, and no retry.
func reconcileWithShortHeartbeats(ctx workflow.Context, in activities.ReconcileInput) (activities.ReconcileResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    1500 * time.Millisecond,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var res activities.ReconcileResult
	err := workflow.ExecuteActivity(ctx, activities.NameReconcileSandboxes, in).Get(ctx, &res)
	return res, err
}
