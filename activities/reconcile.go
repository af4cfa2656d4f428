package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
)

// ReconcileInput tunes one reconciliation pass.
type ReconcileInput struct {
	// GracePeriod protects young sandboxes: one created less than this long
	// ago may belong to a create whose result its workflow has not seen yet.
	GracePeriod time.Duration `json:"GracePeriod"`
}

// ReconcileResult reports a pass.
type ReconcileResult struct {
	Checked int      `json:"Checked"`
	Deleted []string `json:"Deleted"` // sandbox ids deleted as orphans
	Skipped int      `json:"Skipped"` // young, foreign-kind or undecidable sandboxes left alone
}

// ReconcileSandboxes finds sandboxes threadbox created that no entity tracks
// any more and deletes them: every Daytona sandbox labelled
// managed-by=threadbox whose thread or files workflow is not running, or runs
// but tracks another sandbox (a stale generation), once it is older than the
// grace period. Sandboxes of other kinds (e.g. skill validation scratch
// sandboxes) belong to their own workflows and are left alone.
func (a *Activities) ReconcileSandboxes(ctx context.Context, in ReconcileInput) (ReconcileResult, error) {
	if a.Temporal == nil {
		return ReconcileResult{}, errors.New("reconcile: no Temporal client configured")
	}
	list, err := a.Daytona.ListSandboxes(ctx, map[string]string{daytona.LabelManagedBy: daytona.LabelManagedByValue})
	if err != nil {
		return ReconcileResult{}, temporalError("reconcile: list sandboxes", err)
	}
	res := ReconcileResult{Deleted: []string{}}
	now := time.Now()
	for _, sb := range list {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, res.Checked)
		}
		res.Checked++
		if sb.State == daytona.StateDestroyed || sb.State == daytona.StateDestroying {
			continue
		}
		ref, ok := entityOf(sb.Labels)
		wfID := ref.WorkflowID()
		if !ok || sb.CreatedAt.IsZero() || now.Sub(sb.CreatedAt) < in.GracePeriod {
			res.Skipped++
			continue
		}
		tracked, err := a.tracks(ctx, wfID, sb.ID)
		if err != nil {
			a.Logger.WarnContext(ctx, "reconcile: cannot tell who owns sandbox; leaving it", "sandbox", sb.ID, "workflow", wfID, "err", err)
			res.Skipped++
			continue
		}
		if tracked {
			continue
		}
		if err := a.Daytona.DeleteSandbox(ctx, sb.ID); err != nil {
			a.Logger.WarnContext(ctx, "reconcile: deleting orphan failed", "sandbox", sb.ID, "err", err)
			res.Skipped++
			continue
		}
		a.Logger.InfoContext(ctx, "reconcile: deleted orphan sandbox", "sandbox", sb.ID, "name", sb.Name, "workflow", wfID)
		res.Deleted = append(res.Deleted, sb.ID)
		if _, err := a.Queries.SetSandboxState(ctx, db.SetSandboxStateParams{SandboxID: sb.ID, State: "deleted"}); err != nil {
			return res, fmt.Errorf("recording orphan %s: %w", sb.ID, err)
		}
		if _, err := insertLedgerRow(ctx, a.Queries, LifecycleEvent{
			DedupKey:   "reconcile/" + sb.ID,
			Kind:       ref.Kind,
			UserID:     sb.Labels[daytona.LabelUser],
			ThreadID:   sb.Labels[daytona.LabelThread],
			SandboxID:  sb.ID,
			Event:      "orphan_deleted",
			Cause:      CauseReconcile,
			Detail:     "no running workflow " + wfID + " tracks sandbox " + sb.Name,
			OccurredAt: time.Now(),
		}); err != nil {
			return res, fmt.Errorf("recording orphan %s: %w", sb.ID, err)
		}
	}
	return res, nil
}

// tracks reports whether the entity workflow wfID is running and holds
// sandboxID (or is creating, when the id may not be recorded yet).
func (a *Activities) tracks(ctx context.Context, wfID, sandboxID string) (bool, error) {
	desc, err := a.Temporal.DescribeWorkflowExecution(ctx, wfID, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("describe %s: %w", wfID, err)
	}
	if desc.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return false, nil
	}
	v, err := a.Temporal.QueryWorkflow(ctx, wfID, "", entity.QueryState)
	if err != nil {
		return false, fmt.Errorf("query %s: %w", wfID, err)
	}
	var st entity.State
	if err := v.Get(&st); err != nil {
		return false, fmt.Errorf("decode state of %s: %w", wfID, err)
	}
	return st.SandboxID == sandboxID || st.Phase == entity.PhaseCreating, nil
}

// entityOf maps a sandbox's labels to the entity that owns it (ok false for
// sandboxes of no entity, such as skill scratch sandboxes).
func entityOf(labels map[string]string) (entity.Ref, bool) {
	kind, ok := entity.KindOfSandboxType(labels[daytona.LabelKind])
	user, thread := labels[daytona.LabelUser], labels[daytona.LabelThread]
	if !ok || user == "" || (kind == entity.KindThread && thread == "") {
		return entity.Ref{}, false
	}
	if kind == entity.KindFiles {
		return entity.Files(user), true
	}
	return entity.Thread(user, thread), true
}
