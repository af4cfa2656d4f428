package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/entity"
)

// stopRetryDelay is how long the loop waits before trying a failed stop or
// auto-delete again (each attempt already retried inside the activity): a
// minute (or AutoStop when shorter), doubling with each consecutive failure
// up to an hour, so a failure that persists costs a few dozen attempts a
// day, not one a minute.
func (e *entityRun) stopRetryDelay() time.Duration {
	d := min(time.Minute, e.in.Config.AutoStop)
	for i := 1; i < e.lifecycleFailures && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// refreshRetryDelay is how long the loop waits before trying a failed
// refresh of Daytona's clock again: short, as Daytona's backstop is at most
// AutoStop/2 + 1 min away when a refresh is due.
func (e *entityRun) refreshRetryDelay() time.Duration {
	return min(30*time.Second, e.in.Config.AutoStop/4)
}

// ThreadWorkflow owns one thread's agent sandbox (workflow id
// thread:<user>:<thread>).
func ThreadWorkflow(ctx workflow.Context, in entity.Input) error {
	if in.Kind == "" {
		in.Kind = entity.KindThread
	}
	return runEntity(ctx, in)
}

// FilesWorkflow owns one user's files sandbox (workflow id files:<user>); it
// stops after FilesAutoStop and is never deleted by a timer.
func FilesWorkflow(ctx workflow.Context, in entity.Input) error {
	if in.Kind == "" {
		in.Kind = entity.KindFiles
	}
	in.Config.AutoDelete = 0
	return runEntity(ctx, in)
}

func runEntity(ctx workflow.Context, in entity.Input) error {
	if in.UserID == "" || (in.Kind == entity.KindThread && in.ThreadID == "") {
		return fmt.Errorf("entity input needs a user id and, for threads, a thread id: %+v", in)
	}
	if in.Config.AutoStop <= 0 {
		return fmt.Errorf("entity config needs a positive AutoStop, got %s", in.Config.AutoStop)
	}
	e := newEntity(ctx, in, entityVersion(ctx))
	if err := e.register(ctx); err != nil {
		return err
	}
	e.upsertSearchAttributes(ctx, true)
	return e.run(ctx)
}

// run is the main loop: the only place that calls Daytona lifecycle
// activities. Each turn decides from the state (absolute times) what is due,
// does it, or sleeps until the next deadline.
func (e *entityRun) run(ctx workflow.Context) error {
	for {
		if e.version >= entityV1 {
			// A touch delivered in the same workflow task as the timer that
			// woke the loop must count before the loop decides to stop.
			e.drainSignals(ctx)
		}
		now := workflow.Now(ctx)
		e.pruneLeases(now)
		e.leaseReleased = false
		switch {
		case e.deleteReq != nil:
			return e.destroy(ctx)
		case e.wantUp && e.st.Phase != entity.PhaseRunning:
			e.bringUp(ctx)
			continue
		case e.wantUp:
			e.wantUp = false
		}
		if e.shouldContinueAsNew(ctx) {
			if ok, err := e.continueAsNew(ctx); ok {
				return err
			}
			continue
		}
		switch e.st.Phase {
		case entity.PhaseRunning:
			deadline := e.stopDeadline()
			if !now.Before(deadline) {
				e.stop(ctx)
				continue
			}
			wake, summary := deadline, "auto-stop at "+clock(deadline)
			// Daytona's backstop would stop the sandbox before our deadline
			// (a lease, or uses Daytona never saw): reset its clock in time.
			if due := e.refreshDue(); !due.IsZero() && due.Before(deadline) {
				if !now.Before(due) {
					e.refresh(ctx)
					continue
				}
				wake, summary = due, "refresh Daytona activity at "+clock(due)
			}
			e.sleep(ctx, wake, summary)
		case entity.PhaseStopped:
			if e.in.Config.AutoDelete > 0 {
				if !now.Before(e.st.AutoDeleteAt) {
					e.autoDelete(ctx)
					continue
				}
				e.sleep(ctx, e.st.AutoDeleteAt, "auto-delete at "+clock(e.st.AutoDeleteAt))
			} else {
				e.sleep(ctx, time.Time{}, "")
			}
		default: // creating (nothing asked yet), deleted, error: wait for a request
			e.sleep(ctx, time.Time{}, "")
		}
	}
}

// wakeCond is true when something must be done now rather than at the
// deadline the loop sleeps until. Touches and new leases only push deadlines
// later and so do not wake it (no timer churn).
func (e *entityRun) wakeCond(ctx workflow.Context) func() bool {
	return func() bool {
		return e.deleteReq != nil ||
			(e.wantUp && e.st.Phase != entity.PhaseRunning) ||
			e.leaseReleased ||
			e.refreshNeededSooner() ||
			(workflow.GetInfo(ctx).GetContinueAsNewSuggested() && e.canContinueAsNew())
	}
}

// refreshNeededSooner is true when a use or lease pushed the stop deadline
// past Daytona's backstop and the refresh this needs is due before the timer
// the loop sleeps on: the loop re-arms for it, which happens at most once
// per refresh (the next push only comes after the next refresh).
func (e *entityRun) refreshNeededSooner() bool {
	if e.version < entityV1 || e.st.Phase != entity.PhaseRunning || e.op != opNone || e.sleepingUntil.IsZero() {
		return false
	}
	due := e.refreshDue()
	return !due.IsZero() && due.Before(e.sleepingUntil)
}

// sleep waits until `until` (zero: no deadline) or until wakeCond. The timer
// runs in a child context cancelled on return, so a timer that lost the race
// never fires later.
func (e *entityRun) sleep(ctx workflow.Context, until time.Time, summary string) {
	cond := e.wakeCond(ctx)
	if until.IsZero() {
		_ = workflow.Await(ctx, cond)
		return
	}
	d := until.Sub(workflow.Now(ctx))
	if d <= 0 {
		return
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	e.sleepingUntil = until
	defer func() { e.sleepingUntil = time.Time{} }()
	workflow.SetCurrentDetails(ctx, e.details(summary))
	_, _ = workflow.AwaitWithOptions(tctx, workflow.AwaitOptions{
		Timeout:      d,
		TimerOptions: workflow.TimerOptions{Summary: summary},
	}, cond)
}

// refreshDue is when Daytona's last-activity clock must next be reset for
// the sandbox to run until its stop deadline; zero when no refresh is needed.
//
// Daytona's backstop stops the sandbox AutoStop (rounded up to minutes) plus
// one minute after the last activity it saw. Uses do not count: many never
// reach Daytona (a lease taken with POST /leases, POST /threads on an existing
// thread, a lease release), and a long command is a single request Daytona
// does not see as activity while it runs. Only the workflow's own resets
// (create, start, a successful refresh) are sure.
//
// From entityV1 a refresh is needed when the deadline lies past
// lastRefresh+AutoStop, and is due at lastRefresh+AutoStop/2: the backstop is
// then still AutoStop/2 + 1 min away, time for a failed refresh to be retried
// (refreshRetryAt) many times. Before, the refresh came at lastRefresh+AutoStop,
// a minute before the backstop, and a failure was not retried.
func (e *entityRun) refreshDue() time.Time {
	deadline := e.stopDeadline()
	if e.version < entityV1 {
		if at := e.lastRefresh.Add(e.in.Config.AutoStop); at.Before(deadline) {
			return at
		}
		return time.Time{}
	}
	if !deadline.After(e.lastRefresh.Add(e.in.Config.AutoStop)) {
		return time.Time{}
	}
	due := e.lastRefresh.Add(e.in.Config.AutoStop / 2)
	if e.refreshRetryAt.After(due) {
		due = e.refreshRetryAt
	}
	return due
}

// bringUp makes the sandbox run for waiting ensure-running requests: start
// the stopped one, or create the next generation when there is none (first
// use, after an auto-delete, or when Daytona lost it).
func (e *entityRun) bringUp(ctx workflow.Context) {
	actx, done := e.cancelOnDelete(ctx)
	defer done()
	if e.st.SandboxID != "" {
		e.op = opStarting
		info, err := e.startSandbox(actx)
		switch {
		case e.deletedWhileBusy(err):
			return
		case err == nil:
			e.running(ctx, info)
			e.transition(ctx, "started", activities.CauseUse, "")
			return
		case !activities.IsSandboxGone(err):
			// The sandbox still exists, stopped as far as we know: waiting
			// requests get the error, and it stays on the stopped ladder so
			// its auto-delete still happens.
			e.st.Phase = entity.PhaseStopped
			if e.st.StoppedAt.IsZero() {
				e.st.StoppedAt = workflow.Now(ctx)
			}
			if e.in.Config.AutoDelete > 0 && e.st.AutoDeleteAt.IsZero() {
				e.st.AutoDeleteAt = e.st.StoppedAt.Add(e.in.Config.AutoDelete)
			}
			e.fail(ctx, err)
			return
		}
		e.transition(ctx, "lost", activities.CauseError, err.Error())
		e.st.SandboxID, e.st.ToolboxURL = "", ""
	}
	e.op = opCreating
	e.st.Phase = entity.PhaseCreating
	e.upsertSearchAttributes(ctx, false)
	info, err := e.ensureSandbox(actx, e.st.Generation+1)
	if e.deletedWhileBusy(err) {
		return
	}
	if err != nil {
		e.fail(ctx, err)
		return
	}
	e.running(ctx, info)
	e.transition(ctx, "created", activities.CauseUse, "generation "+fmt.Sprint(info.Generation))
}

// cancelOnDelete (from entityV1) returns a context that a delete request
// cancels, for a create or start: a user's delete must not wait behind a
// slow Daytona. done releases the watcher once the operation is over.
func (e *entityRun) cancelOnDelete(ctx workflow.Context) (actx workflow.Context, done func()) {
	if e.version < entityV1 {
		return ctx, func() {}
	}
	actx, cancel := workflow.WithCancel(ctx)
	over := false
	workflow.Go(ctx, func(gctx workflow.Context) {
		_ = workflow.Await(gctx, func() bool { return over || e.deleteReq != nil })
		if !over {
			cancel()
		}
	})
	return actx, func() { over = true }
}

// deletedWhileBusy reports a create or start that a delete cancelled: the
// loop goes on to destroy (which deletes by id, or by the generation's name
// when the create never answered), and the waiting requests learn that the
// thread was deleted.
func (e *entityRun) deletedWhileBusy(err error) bool {
	if err == nil || e.deleteReq == nil || !temporal.IsCanceledError(err) {
		return false
	}
	e.op = opNone
	e.wantUp = false
	return true
}

// running records a sandbox that now runs. The use that asked for it counts
// from now, after the start, and waiting requests are released.
func (e *entityRun) running(ctx workflow.Context, info activities.SandboxInfo) {
	now := workflow.Now(ctx)
	e.st.Phase = entity.PhaseRunning
	e.st.SandboxID, e.st.ToolboxURL, e.st.Snapshot = info.SandboxID, info.ToolboxURL, info.Snapshot
	e.st.Generation = info.Generation
	e.st.StoppedAt, e.st.AutoDeleteAt, e.st.Error = time.Time{}, time.Time{}, ""
	e.use(now, now)
	e.lastRefresh = now
	e.st.AutoStopAt = e.stopDeadline()
	e.op = opNone
	e.wantUp = false
}

// fail records that bringing the sandbox up failed: waiting requests get the
// error, and the next ensure-running tries again. A failed create leaves the
// entity in error; a failed start leaves it stopped (the caller sets it).
func (e *entityRun) fail(ctx workflow.Context, err error) {
	if e.st.Phase != entity.PhaseStopped {
		e.st.Phase = entity.PhaseError
	}
	e.st.Error = err.Error()
	e.st.ErrorType = userFacingFailure(err)
	e.op = opNone
	e.wantUp = false
	e.failEpoch++
	e.transition(ctx, "failed", activities.CauseError, e.st.Error)
}

// userFacingFailure is the type of a bring-up failure the user should be
// told as such (the organisation is out of capacity, suspended, or out of
// volumes), or "" for any other failure.
func userFacingFailure(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		switch ae.Type() {
		case entity.ErrTypeOrgCapacity, entity.ErrTypeOrgSuspended, entity.ErrTypeVolumeQuota:
			return ae.Type()
		}
	}
	return ""
}

// stop stops the sandbox once its deadline passed and no lease is live.
func (e *entityRun) stop(ctx workflow.Context) {
	deadline := e.stopDeadline() // the policy this stop carries out, for the ledger
	e.op = opStopping
	res, err := e.stopSandbox(ctx)
	e.op = opNone
	if err != nil {
		e.lifecycleFailures++
		workflow.GetLogger(ctx).Warn("stopping the sandbox failed; will retry", "error", err, "failures", e.lifecycleFailures)
		retry := workflow.Now(ctx).Add(e.stopRetryDelay())
		e.sleep(ctx, retry, "retry stop at "+clock(retry))
		return
	}
	e.lifecycleFailures = 0
	now := workflow.Now(ctx)
	e.st.AutoStopAt = time.Time{}
	if res.Gone {
		e.lost(ctx, activities.CauseIdleTimer, "Daytona no longer has the sandbox")
		return
	}
	e.st.Phase, e.st.StoppedAt = entity.PhaseStopped, now
	if e.in.Config.AutoDelete > 0 {
		e.st.AutoDeleteAt = now.Add(e.in.Config.AutoDelete)
	}
	e.transitionWith(ctx, "stopped", activities.CauseIdleTimer, "", func(ev *activities.LifecycleEvent) { ev.StopDeadline = deadline })
}

// lost records that Daytona no longer has the sandbox (its backstop or an
// operator deleted it): the generation is over, leases covering work in it
// end with it, and the next use creates the next generation.
func (e *entityRun) lost(ctx workflow.Context, cause, detail string) {
	e.st.Phase, e.st.SandboxID, e.st.ToolboxURL = entity.PhaseDeleted, "", ""
	e.st.AutoStopAt = time.Time{}
	e.st.Leases = map[string]time.Time{}
	e.transition(ctx, "lost", cause, detail)
}

// autoDelete deletes a sandbox that stayed stopped for AutoDelete. The
// entity lives on; its next use creates the next generation.
func (e *entityRun) autoDelete(ctx workflow.Context) {
	e.op = opDeleting
	err := e.deleteSandboxActivity(ctx)
	e.op = opNone
	if err != nil {
		e.lifecycleFailures++
		workflow.GetLogger(ctx).Warn("auto-delete failed; will retry", "error", err, "failures", e.lifecycleFailures)
		retry := workflow.Now(ctx).Add(e.stopRetryDelay())
		e.sleep(ctx, retry, "retry auto-delete at "+clock(retry))
		return
	}
	e.lifecycleFailures = 0
	e.st.Phase, e.st.SandboxID, e.st.ToolboxURL = entity.PhaseDeleted, "", ""
	e.st.AutoDeleteAt = time.Time{}
	e.transition(ctx, "deleted", activities.CauseDeleteTimer, "")
}

// destroy handles a user delete: destroy the sandbox (idempotent; when it
// keeps failing the reconciler removes it, as no workflow tracks it any
// more), let every handler finish, and end the workflow.
func (e *entityRun) destroy(ctx workflow.Context) error {
	e.op = opDeleting
	cause := activities.CauseUserDelete
	if e.deleteReq.Cause != "" {
		cause = e.deleteReq.Cause
	}
	detail := ""
	if err := e.deleteSandboxActivity(ctx); err != nil {
		detail = "delete failed, left to the reconciler: " + err.Error()
		workflow.GetLogger(ctx).Error("deleting the sandbox failed", "error", err)
		// The thread row remembers the highest generation that may be left
		// behind (a create whose result was lost included), so a revived
		// thread starts above it and never adopts it.
		e.st.Generation = e.ref().Generation
	}
	e.op = opNone
	e.st.Phase, e.st.SandboxID, e.st.ToolboxURL = entity.PhaseDeleted, "", ""
	e.st.AutoStopAt, e.st.AutoDeleteAt = time.Time{}, time.Time{}
	e.st.Leases = map[string]time.Time{}
	e.done = true
	e.transition(ctx, "deleted", cause, detail)
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	e.drainSignals(ctx)
	return nil
}

// refresh resets Daytona's last-activity clock while the sandbox must run
// past Daytona's backstop. From entityV1 only a successful refresh counts
// (from when it was sent); a failed one is retried after refreshRetryDelay,
// and a sandbox Daytona no longer has is lost.
func (e *entityRun) refresh(ctx workflow.Context) {
	sent := workflow.Now(ctx)
	if e.version < entityV1 {
		e.lastRefresh = sent
	}
	err := e.refreshActivity(ctx)
	switch {
	case e.version < entityV1:
		if err != nil {
			workflow.GetLogger(ctx).Warn("refreshing Daytona's last activity failed", "error", err)
		}
	case err == nil:
		e.lastRefresh, e.refreshRetryAt = sent, time.Time{}
	case activities.IsSandboxGone(err):
		e.lost(ctx, activities.CauseError, "Daytona no longer has the sandbox (found refreshing its activity)")
	default:
		e.refreshRetryAt = workflow.Now(ctx).Add(e.refreshRetryDelay())
		workflow.GetLogger(ctx).Warn("refreshing Daytona's last activity failed; will retry", "error", err, "retry_at", e.refreshRetryAt)
	}
}

// canContinueAsNew: only when no request waits on the main loop (handlers
// waiting on it would deadlock AllHandlersFinished) and nothing is in flight.
func (e *entityRun) canContinueAsNew() bool {
	return !e.wantUp && e.deleteReq == nil && e.op == opNone
}

func (e *entityRun) shouldContinueAsNew(ctx workflow.Context) bool {
	return e.canContinueAsNew() && workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// continueAsNew carries the state (absolute times, so deadlines do not
// stretch) into a new run, after every handler finished and every delivered
// signal was applied. ok is false when a request arrived meanwhile and the
// loop must serve it first.
func (e *entityRun) continueAsNew(ctx workflow.Context) (ok bool, err error) {
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	e.drainSignals(ctx)
	if !e.canContinueAsNew() {
		return false, nil
	}
	in := e.in
	st := e.snapshot()
	in.State = &st
	return true, workflow.NewContinueAsNewError(ctx, workflow.GetInfo(ctx).WorkflowType.Name, in)
}

// drainSignals applies signals delivered but not yet applied, which would
// otherwise be lost when the run ends. A signal delivered in this workflow
// task may already be handed to a blocked receiver coroutine that has not run
// yet (ReceiveAsync no longer sees it), so first yield once to let those
// coroutines apply what they hold, then read whatever is still buffered.
func (e *entityRun) drainSignals(ctx workflow.Context) {
	yielded := false
	workflow.Go(ctx, func(workflow.Context) { yielded = true })
	_ = workflow.Await(ctx, func() bool { return yielded })
	for {
		var t entity.TouchSignal
		if !e.touchCh.ReceiveAsync(&t) {
			break
		}
		e.touch(ctx, t)
	}
	for {
		var r entity.ReleaseLeaseSignal
		if !e.releaseCh.ReceiveAsync(&r) {
			break
		}
		e.release(ctx, r)
	}
	for {
		var r entity.DeleteRequest
		if !e.deleteCh.ReceiveAsync(&r) {
			break
		}
		e.requestDelete(r)
	}
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05Z") }
