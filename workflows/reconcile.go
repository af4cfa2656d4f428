package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
)

// ReconcileWorkflowName is the registered name of the orphan reconciler.
const ReconcileWorkflowName = "ReconcileWorkflow"

// DefaultReconcileGrace protects sandboxes younger than this from the
// reconciler: their create may still be reporting to its workflow.
const DefaultReconcileGrace = 10 * time.Minute

// ReconcileWorkflowInput configures one reconciliation run.
type ReconcileWorkflowInput struct {
	GracePeriod time.Duration `json:"GracePeriod"` // 0 = DefaultReconcileGrace
}

// ReconcileWorkflow deletes sandboxes threadbox created and no entity tracks
// any more (the contract's "no sandbox is left behind"). It runs on a
// schedule (EnsureReconcileSchedule); one activity does the pass, with
// heartbeats so a long listing survives and a dead worker is noticed.
func ReconcileWorkflow(ctx workflow.Context, in ReconcileWorkflowInput) (activities.ReconcileResult, error) {
	if in.GracePeriod <= 0 {
		in.GracePeriod = DefaultReconcileGrace
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 3},
		Summary:             "delete untracked threadbox sandboxes",
	})
	var res activities.ReconcileResult
	err := workflow.ExecuteActivity(actx, activities.NameReconcileSandboxes, activities.ReconcileInput{GracePeriod: in.GracePeriod}).Get(ctx, &res)
	return res, err
}
