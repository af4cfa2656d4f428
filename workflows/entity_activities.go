package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/entity"
)

// lifecycleRetry caps Daytona lifecycle retries. Daytona 4xx errors arrive
// non-retryable from the activities, so only transient failures are retried.
var lifecycleRetry = &temporal.RetryPolicy{
	InitialInterval:    time.Second,
	BackoffCoefficient: 2,
	MaximumInterval:    30 * time.Second,
	MaximumAttempts:    5,
}

// lifecycleDeadline bounds one lifecycle operation with all its retries. A
// slow Daytona then fails it within minutes (the loop's own retries take
// over: a stop or delete on a timer, a create or start at the next ensure)
// instead of holding the loop, and the requests waiting on it, for the 25 min
// of five 5-minute attempts.
const lifecycleDeadline = 10 * time.Minute

// lifecycleHeartbeat is how soon Temporal notices that the worker running a
// lifecycle activity died (SIGKILL, OOM, a lost node) and schedules the
// retry on another: the activities heartbeat every third of it while they
// wait on Daytona (activities.keepAlive), so a live one never misses it.
// 5 s keeps a stop or delete whose worker died within the lifecycle bound of
// the shortest production interval (1 % of 15 min, docs/RELIABILITY.md) with
// its retry and call, and leaves a heartbeat (sent at most every 4 s by the
// SDK's throttle) room to be late on a loaded worker.
// Changing it changes no command (replay ignores activity timeouts).
const lifecycleHeartbeat = 5 * time.Second

// lifecycleOptions: a create or start can take minutes on Daytona (snapshot
// pulls), so StartToClose is well above it; heartbeats detect a dead worker
// within lifecycleHeartbeat, and carry a cancellation (a delete cancels a
// create or start) to the activity, which the workflow waits for so the
// delete comes after it.
func lifecycleOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout:    5 * time.Minute,
		ScheduleToCloseTimeout: lifecycleDeadline,
		HeartbeatTimeout:       lifecycleHeartbeat,
		WaitForCancellation:    true,
		RetryPolicy:            lifecycleRetry,
		Summary:                summary,
	}
}

func (e *entityRun) ref() activities.SandboxRef {
	gen := e.st.Generation
	if e.st.SandboxID == "" {
		gen++ // the generation a create may have left behind
	}
	return activities.SandboxRef{Kind: e.in.Kind, UserID: e.in.UserID, ThreadID: e.in.ThreadID, SandboxID: e.st.SandboxID, Generation: gen}
}

func (e *entityRun) ensureSandbox(ctx workflow.Context, gen int) (activities.SandboxInfo, error) {
	actx := workflow.WithActivityOptions(ctx, lifecycleOptions(fmt.Sprintf("create %s sandbox, generation %d", e.in.Kind, gen)))
	var info activities.SandboxInfo
	err := workflow.ExecuteActivity(actx, activities.NameEnsureSandbox, activities.EnsureSandboxInput{
		Kind:       e.in.Kind,
		UserID:     e.in.UserID,
		ThreadID:   e.in.ThreadID,
		Generation: gen,
		AutoStop:   e.in.Config.AutoStop,
		AutoDelete: e.in.Config.AutoDelete,
	}).Get(ctx, &info)
	return info, err
}

func (e *entityRun) startSandbox(ctx workflow.Context) (activities.SandboxInfo, error) {
	actx := workflow.WithActivityOptions(ctx, lifecycleOptions("start sandbox "+e.st.SandboxID))
	var info activities.SandboxInfo
	err := workflow.ExecuteActivity(actx, activities.NameStartSandbox, e.ref()).Get(ctx, &info)
	return info, err
}

func (e *entityRun) stopSandbox(ctx workflow.Context) (activities.StopResult, error) {
	actx := workflow.WithActivityOptions(ctx, lifecycleOptions("stop sandbox "+e.st.SandboxID+" (idle)"))
	var res activities.StopResult
	err := workflow.ExecuteActivity(actx, activities.NameStopSandbox, e.ref()).Get(ctx, &res)
	return res, err
}

func (e *entityRun) deleteSandboxActivity(ctx workflow.Context) error {
	what := e.st.SandboxID
	if what == "" {
		what = fmt.Sprintf("generation %d if it exists", e.ref().Generation)
	}
	actx := workflow.WithActivityOptions(ctx, lifecycleOptions("delete sandbox "+what))
	return workflow.ExecuteActivity(actx, activities.NameDeleteSandbox, e.ref()).Get(ctx, nil)
}

func (e *entityRun) refreshActivity(ctx workflow.Context) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
		Summary:             "refresh Daytona last activity of " + e.st.SandboxID + " (lease held)",
	})
	return workflow.ExecuteActivity(actx, activities.NameRefreshSandbox, e.ref()).Get(ctx, nil)
}

// transition publishes a state change: search attributes, UI details and a
// ledger row (which also updates the thread row the API serves). A ledger
// failure after its retries is logged, never allowed to stall the lifecycle.
func (e *entityRun) transition(ctx workflow.Context, event, cause, detail string) {
	e.transitionWith(ctx, event, cause, detail, nil)
}

// transitionWith is transition with the ledger row amended by amend.
func (e *entityRun) transitionWith(ctx workflow.Context, event, cause, detail string, amend func(*activities.LifecycleEvent)) {
	e.seq++
	e.upsertSearchAttributes(ctx, false)
	workflow.SetCurrentDetails(ctx, e.details(""))
	info := workflow.GetInfo(ctx)
	ev := activities.LifecycleEvent{
		DedupKey:       fmt.Sprintf("%s/%s/%d", info.WorkflowExecution.ID, info.WorkflowExecution.RunID, e.seq),
		Kind:           e.in.Kind,
		UserID:         e.in.UserID,
		ThreadID:       e.in.ThreadID,
		SandboxID:      e.st.SandboxID,
		Event:          event,
		Cause:          cause,
		Detail:         detail,
		OccurredAt:     workflow.Now(ctx),
		State:          e.rowState(),
		Generation:     e.st.Generation,
		Snapshot:       e.st.Snapshot,
		LastActivityAt: e.st.LastUseAt,
		AutoDeleteAt:   e.st.AutoDeleteAt,
		ErrorMessage:   e.st.Error,
	}
	if e.st.Phase == entity.PhaseRunning {
		ev.AutoStopAt = e.stopDeadline()
	}
	if amend != nil {
		amend(&ev)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 10},
		Summary:             fmt.Sprintf("ledger: %s (%s)", event, cause),
	})
	if err := workflow.ExecuteActivity(actx, activities.NameRecordLifecycleEvent, ev).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("recording lifecycle event failed", "event", event, "error", err)
	}
}

// rowState is the thread state clients see. An auto-deleted sandbox leaves
// the thread "stopped" (without a sandbox): the thread lives on and its next
// use creates a new sandbox; "deleted" is reserved for a user delete.
func (e *entityRun) rowState() string {
	if e.st.Phase == entity.PhaseDeleted && !e.done {
		return string(entity.PhaseStopped)
	}
	return string(e.st.Phase)
}

// upsertSearchAttributes publishes SandboxId and SandboxState; at start it
// also sets ThreadId/UserId when the starter did not.
func (e *entityRun) upsertSearchAttributes(ctx workflow.Context, start bool) {
	var ups []temporal.SearchAttributeUpdate
	if start {
		sa := workflow.GetTypedSearchAttributes(ctx)
		if _, ok := sa.GetKeyword(entity.AttrUserID); !ok {
			ups = append(ups, entity.AttrUserID.ValueSet(e.in.UserID))
		}
		if _, ok := sa.GetKeyword(entity.AttrThreadID); !ok && e.in.ThreadID != "" {
			ups = append(ups, entity.AttrThreadID.ValueSet(e.in.ThreadID))
		}
	}
	if e.st.SandboxID != "" {
		ups = append(ups, entity.AttrSandboxID.ValueSet(e.st.SandboxID))
	} else {
		ups = append(ups, entity.AttrSandboxID.ValueUnset())
	}
	ups = append(ups, entity.AttrSandboxState.ValueSet(string(e.st.Phase)))
	if err := workflow.UpsertTypedSearchAttributes(ctx, ups...); err != nil {
		workflow.GetLogger(ctx).Warn("upserting search attributes failed", "error", err)
	}
}

// details is the one-line status shown in the Temporal UI.
func (e *entityRun) details(next string) string {
	s := fmt.Sprintf("%s %s: %s", e.in.Kind, e.st.SandboxID, e.st.Phase)
	if e.st.Generation > 0 {
		s += fmt.Sprintf(" (generation %d)", e.st.Generation)
	}
	if n := len(e.st.Leases); n > 0 {
		s += fmt.Sprintf(", %d lease(s)", n)
	}
	if next != "" {
		s += "; next: " + next
	}
	return s
}
