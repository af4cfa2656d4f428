package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	// Redelivered counts user deletes whose signal never reached their
	// running workflow (see redeliverDelete), sent again by this pass.
	Redelivered int `json:"Redelivered"`
}

// ReconcileSandboxes finds sandboxes threadbox created that no entity tracks
// any more and deletes them: every Daytona sandbox labelled
// managed-by=threadbox, once it is older than the grace period, whose thread
// or files workflow is not running, or runs but can never use it again (see
// owned). Sandboxes of other kinds (e.g. skill validation scratch sandboxes)
// belong to their own workflows and are left alone.
//
// It heartbeats for every sandbox and all through each delete (one Daytona
// delete can take longer than the heartbeat timeout), so a dead worker is
// noticed and the retry starts over on a fresh listing.
func (a *Activities) ReconcileSandboxes(ctx context.Context, in ReconcileInput) (ReconcileResult, error) {
	if a.Temporal == nil {
		return ReconcileResult{}, errors.New("reconcile: no Temporal client configured")
	}
	// Oldest first: Daytona's default order is by last activity, which
	// shifts under a long pass (pages would skip or repeat sandboxes).
	list, err := a.Daytona.ListSandboxes(ctx, map[string]string{daytona.LabelManagedBy: daytona.LabelManagedByValue}, daytona.OldestFirst)
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
		// A missed user delete is sent whatever the sandbox's age: the
		// workflow carries it out itself, so the grace period (which guards
		// direct deletes of sandboxes a create may still report) does not
		// apply.
		if ok {
			if sent, err := a.redeliverDelete(ctx, ref, sb); err != nil {
				a.Logger.WarnContext(ctx, "reconcile: re-sending a user delete failed; leaving the sandbox", "sandbox", sb.ID, "workflow", wfID, "err", err)
				res.Skipped++
				continue
			} else if sent {
				res.Redelivered++
				continue
			}
		}
		if !ok || sb.CreatedAt.IsZero() || now.Sub(sb.CreatedAt) < in.GracePeriod {
			res.Skipped++
			continue
		}
		owned, err := a.owned(ctx, ref, sb)
		if err != nil {
			a.Logger.WarnContext(ctx, "reconcile: cannot tell who owns sandbox; leaving it", "sandbox", sb.ID, "workflow", wfID, "err", err)
			res.Skipped++
			continue
		}
		if owned {
			continue
		}
		stop := keepAlive(ctx, "deleting orphan "+sb.ID)
		err = a.Daytona.DeleteSandbox(ctx, sb.ID)
		stop()
		if err != nil {
			a.Logger.WarnContext(ctx, "reconcile: deleting orphan failed", "sandbox", sb.ID, "err", err)
			res.Skipped++
			continue
		}
		a.Logger.InfoContext(ctx, "reconcile: deleted orphan sandbox", "sandbox", sb.ID, "name", sb.Name, "workflow", wfID)
		res.Deleted = append(res.Deleted, sb.ID)
		a.Metrics.orphanDeleted(ref.Kind)
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
			Detail:     "no running workflow " + wfID + " can use sandbox " + sb.Name,
			OccurredAt: time.Now(),
		}); err != nil {
			return res, fmt.Errorf("recording orphan %s: %w", sb.ID, err)
		}
	}
	return res, nil
}

// redeliverDelete tells the running workflow of a thread its user deleted
// to delete, when the delete never reached it: the API marks the row
// deleted before it signals, and the signal fails while Temporal is
// unreachable (the user gets a 503, a retry 404). Without this the
// workflow would keep the sandbox until its own idle timers stop and
// delete it, hours later. The workflow carries the delete out itself (it
// may be in the middle of a create or start) and keeps the first delete it
// receives, so a pass that meets a delete still in progress (a slow
// Daytona) only repeats it. Known gap: a thread revived between the row
// read and the signal (one round trip) is deleted again by this signal,
// its create's 201 followed by 404s; closing it needs the workflow to
// refuse a delete older than its last use (a versioned workflow change).
// It reports false when the thread is not deleted or its workflow does
// not run (then the sandbox is an ordinary orphan).
func (a *Activities) redeliverDelete(ctx context.Context, ref entity.Ref, sb daytona.Sandbox) (bool, error) {
	if ref.Kind != entity.KindThread {
		return false, nil
	}
	row, err := a.Queries.APIGetThread(ctx, db.APIGetThreadParams{UserID: ref.UserID, ThreadID: ref.ThreadID})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading thread %s: %w", ref.ThreadID, err)
	}
	if row.State != "deleted" {
		return false, nil
	}
	req := entity.DeleteRequest{RequestID: "reconcile-" + sb.ID, Cause: CauseUserDelete}
	err = a.Temporal.SignalWorkflow(ctx, ref.WorkflowID(), "", entity.SignalDelete, req)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("signalling %s: %w", ref.WorkflowID(), err)
	}
	a.Logger.InfoContext(ctx, "reconcile: re-sent a user delete its workflow never received", "sandbox", sb.ID, "workflow", ref.WorkflowID())
	return true, nil
}

// owned reports whether the entity workflow of ref runs and may still use
// sb. Describe answers for almost every sandbox without running the
// workflow: a closed or missing workflow owns nothing, and the SandboxId
// search attribute names the sandbox a running one holds. Only for another
// sandbox of a running workflow is the workflow asked (a query, which may
// replay its history): it owns a sandbox of a generation above its own —
// one it creates right now, or whose create answered too late, and which its
// next create adopts by name. A lower generation it can never use again:
// generations only grow within a run, and a revived thread's new run never
// adopts its earlier life's sandboxes (the PastGeneration query).
func (a *Activities) owned(ctx context.Context, ref entity.Ref, sb daytona.Sandbox) (bool, error) {
	wfID := ref.WorkflowID()
	desc, err := a.Temporal.DescribeWorkflow(ctx, wfID, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("describe %s: %w", wfID, err)
	}
	if desc.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return false, nil
	}
	if id, ok := desc.TypedSearchAttributes.GetKeyword(entity.AttrSandboxID); ok && id == sb.ID {
		return true, nil
	}
	gen, ok := generationOf(ref, sb)
	if !ok {
		return false, fmt.Errorf("sandbox %s: name %q is not one of %s's generations", sb.ID, sb.Name, wfID)
	}
	v, err := a.Temporal.QueryWorkflow(ctx, wfID, "", entity.QueryState)
	if err != nil {
		return false, fmt.Errorf("query %s: %w", wfID, err)
	}
	var st entity.State
	if err := v.Get(&st); err != nil {
		return false, fmt.Errorf("decode state of %s: %w", wfID, err)
	}
	return st.SandboxID == sb.ID || gen > st.Generation, nil
}

// generationOf is the generation whose deterministic name sb carries (ok
// false when the name is not one the entity of ref would create).
func generationOf(ref entity.Ref, sb daytona.Sandbox) (int, bool) {
	i := strings.LastIndexByte(sb.Name, '-')
	if i < 0 {
		return 0, false
	}
	gen, err := strconv.Atoi(sb.Name[i+1:])
	if err != nil || gen < 1 {
		return 0, false
	}
	return gen, daytona.SandboxName(ref.Kind.SandboxType(), entityKey(ref.Kind, ref.UserID, ref.ThreadID), gen) == sb.Name
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
