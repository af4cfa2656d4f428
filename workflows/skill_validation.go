package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
)

// skillRetry retries infrastructure failures a few times; a failing check is
// a verdict, not an error, and is never retried.
var skillRetry = &temporal.RetryPolicy{
	InitialInterval:    time.Second,
	BackoffCoefficient: 2,
	MaximumInterval:    30 * time.Second,
	MaximumAttempts:    3,
}

// scratchCleanup returns a function that deletes the scratch sandbox of key
// once, on a disconnected context so it also runs after a cancellation. If
// the delete keeps failing, Daytona's own auto-stop/auto-delete intervals set
// at creation remove the sandbox (the reconciler leaves scratch sandboxes
// alone).
func scratchCleanup(ctx workflow.Context, key, summary string) func() {
	done := false
	return func() {
		if done {
			return
		}
		done = true
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		dctx = workflow.WithActivityOptions(dctx, quickOptions(summary))
		if err := workflow.ExecuteActivity(dctx, activities.NameDeleteScratchSandbox, activities.ScratchSandboxInput{ScratchKey: key}).Get(dctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("scratch sandbox not deleted; Daytona's auto-delete backstop applies", "key", key, "err", err)
		}
	}
}

// quickOptions are for database writes and deletes.
func quickOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 10},
		Summary:             summary,
	}
}

// SkillValidationWorkflow validates one uploaded skill version in a scratch
// sandbox (see activities.ValidateSkill), records valid or invalid with the
// log, always deletes the scratch sandbox (also on failure and cancellation,
// from a disconnected context), and for a valid skill queues a snapshot build
// on the builder so the skill gets published.
func SkillValidationWorkflow(ctx workflow.Context, in SkillValidationInput) (SkillValidationStatus, error) {
	st := SkillValidationStatus{Phase: "validating"}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (SkillValidationStatus, error) { return st, nil }); err != nil {
		return st, err
	}
	key := fmt.Sprintf("skill-%s-v%d", in.Name, in.Version)
	cleanup := scratchCleanup(ctx, key, "delete scratch sandbox")
	finished := false
	finish := func(passed bool, log string) error {
		finished = true
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		dctx = workflow.WithActivityOptions(dctx, quickOptions("record verdict"))
		return workflow.ExecuteActivity(dctx, activities.NameFinishSkillValidation, activities.FinishSkillValidationInput{SkillID: in.SkillID, Passed: passed, Log: log}).Get(dctx, nil)
	}
	defer func() {
		cleanup()
		if !finished {
			// Cancelled or failed before a verdict: never leave it validating.
			_ = finish(false, st.Log+"validation did not complete (cancelled or failed); upload the skill again to retry\n")
		}
	}()

	vctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		// On cancellation, wait until the activity has stopped before the
		// cleanup deletes its scratch sandbox: a create still in flight
		// would otherwise land after the delete and never be removed.
		WaitForCancellation: true,
		RetryPolicy:         skillRetry,
		Summary:             "validate " + in.Name + " v" + fmt.Sprint(in.Version),
	})
	var res activities.ValidateSkillResult
	err := workflow.ExecuteActivity(vctx, activities.NameValidateSkill, activities.ValidateSkillInput{SkillID: in.SkillID, ScratchKey: key, Actor: in.Actor}).Get(ctx, &res)
	if err != nil {
		if errors.Is(ctx.Err(), workflow.ErrCanceled) || temporal.IsCanceledError(err) {
			st.Phase, st.Error = "cancelled", "cancelled"
			return st, err
		}
		res = activities.ValidateSkillResult{Log: res.Log + "validation could not run: " + rootMessage(err) + "\n"}
		st.Error = rootMessage(err)
	}
	st.SandboxID, st.Log = res.SandboxID, res.Log
	st.Phase = "cleaning-up"
	cleanup()
	if err := finish(res.Passed, res.Log); err != nil {
		st.Phase, st.Error = "failed", err.Error()
		return st, err
	}
	st.Result = "invalid"
	if !res.Passed {
		st.Phase = "done"
		return st, nil
	}
	st.Result = "valid"
	st.Phase = "requesting-build"
	req := BuildRequest{Actor: in.Actor, Reason: fmt.Sprintf("skill %s v%d validated", in.Name, in.Version), SkillID: in.SkillID, RequestedAt: workflow.Now(ctx)}
	if err := RequestSnapshotBuild(ctx, req); err != nil {
		st.Phase, st.Error = "failed", err.Error()
		return st, err
	}
	st.Phase = "done"
	return st, nil
}

// RequestSnapshotBuild queues req on the builder workflow from inside a
// workflow: it signals the running builder, or starts it (as an abandoned
// child, so it outlives the caller) when none runs. A race with a builder
// that is just finishing is resolved by trying again.
func RequestSnapshotBuild(ctx workflow.Context, req BuildRequest) error {
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		err := workflow.SignalExternalWorkflow(ctx, SnapshotBuilderWorkflowID, "", SignalBuildRequest, req).Get(ctx, nil)
		if err == nil {
			return nil
		}
		var unknown *temporal.UnknownExternalWorkflowExecutionError
		if !errors.As(err, &unknown) {
			return fmt.Errorf("signalling the snapshot builder: %w", err)
		}
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            SnapshotBuilderWorkflowID,
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			StaticSummary:         "snapshot builder: one snapshot build at a time",
		})
		child := workflow.ExecuteChildWorkflow(cctx, SnapshotBuilderWorkflowName, BuilderInput{Pending: []BuildRequest{req}})
		var exec workflow.Execution
		err = child.GetChildWorkflowExecution().Get(ctx, &exec)
		if err == nil {
			return nil
		}
		if !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			return fmt.Errorf("starting the snapshot builder: %w", err)
		}
		lastErr = err
		_ = workflow.Sleep(ctx, time.Second)
	}
	return fmt.Errorf("could not reach the snapshot builder: %w", lastErr)
}

// rootMessage is the innermost message of an activity failure, which is what
// an admin can act on.
func rootMessage(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
