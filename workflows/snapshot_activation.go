package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
)

// SnapshotActivationWorkflow (ids snapshot-activate:<id>:<time> and
// snapshot-rollback:<time>) points new agent sandboxes at another version:
// it first makes sure Daytona can use that snapshot (re-activating it if
// Daytona deactivated it), then flips the pointer and writes the audit row in
// one transaction. Running threads keep their sandbox; their next new sandbox
// uses the new active version.
func SnapshotActivationWorkflow(ctx workflow.Context, in ActivationInput) (ActivationStatus, error) {
	st := ActivationStatus{Phase: "ensuring-snapshot", SnapshotID: in.SnapshotID}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (ActivationStatus, error) { return st, nil }); err != nil {
		return st, err
	}
	ectx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5},
		Summary:             "make the Daytona snapshot usable",
	})
	if err := workflow.ExecuteActivity(ectx, activities.NameEnsureSnapshotUsable, activities.EnsureSnapshotUsableInput{SnapshotID: in.SnapshotID}).Get(ctx, nil); err != nil {
		st.Phase, st.Error = "failed", rootMessage(err)
		return st, err
	}
	st.Phase = "switching"
	var res activities.ActivateSnapshotResult
	actx := workflow.WithActivityOptions(ctx, quickOptions("switch the active snapshot"))
	if err := workflow.ExecuteActivity(actx, activities.NameActivateSnapshot, activities.ActivateSnapshotInput{
		SnapshotID: in.SnapshotID, Actor: in.Actor, Reason: in.Reason, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
	}).Get(ctx, &res); err != nil {
		st.Phase, st.Error = "failed", rootMessage(err)
		return st, err
	}
	st.Phase, st.FromID = "done", res.FromID
	return st, nil
}
