package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/entity"
)

// Limits of the entity workflows.
const (
	// MaxLeases bounds the live leases of one entity (state is carried across
	// ContinueAsNew and must stay small).
	MaxLeases = 256
)

// op is the lifecycle operation the main loop is running, if any. While one
// runs the sandbox is not "ready" even if its phase still says running.
type op string

const (
	opNone     op = ""
	opCreating op = "creating"
	opStarting op = "starting"
	opStopping op = "stopping"
	opDeleting op = "deleting"
)

// entityRun is one run of a sandbox entity workflow. Handlers only record
// requests and wait; the main loop (run) is the only caller of the Daytona
// lifecycle activities, so concurrent requests can never create two
// sandboxes.
type entityRun struct {
	in entity.Input
	st entity.State

	op            op
	wantUp        bool // an ensure-running waits for the sandbox to run
	failEpoch     int  // bumped when bringing the sandbox up failed
	deleteReq     *entity.DeleteRequest
	done          bool // the sandbox is destroyed after a user delete: the run ends
	leaseReleased bool // a lease ended early, so the stop deadline may be earlier
	seq           int  // ledger sequence within this run

	// version is the entity version this run follows (versions.go).
	version workflow.Version
	// lastRefresh is when the workflow last reset Daytona's last-activity
	// clock (create, start, successful refresh); refreshRetryAt, when set,
	// is the earliest next try after a failed refresh.
	lastRefresh    time.Time
	refreshRetryAt time.Time
	// sleepingUntil is the deadline the loop's timer is armed for (zero
	// while it runs or waits without one).
	sleepingUntil time.Time
	// lifecycleFailures counts consecutive failed stops or auto-deletes
	// (stopRetryDelay backs off with it).
	lifecycleFailures int

	touchCh   workflow.ReceiveChannel
	releaseCh workflow.ReceiveChannel
	deleteCh  workflow.ReceiveChannel
}

func newEntity(ctx workflow.Context, in entity.Input, version workflow.Version) *entityRun {
	e := &entityRun{in: in, version: version}
	if in.State != nil {
		e.st = *in.State
	} else {
		e.st = entity.State{Phase: entity.PhaseCreating}
	}
	if e.st.Leases == nil {
		e.st.Leases = map[string]time.Time{}
	}
	// When Daytona's clock was last reset is not carried across
	// ContinueAsNew: leaving it zero makes a running sandbox's first turn
	// refresh it, which is never too late.
	e.touchCh = workflow.GetSignalChannel(ctx, entity.SignalTouch)
	e.releaseCh = workflow.GetSignalChannel(ctx, entity.SignalReleaseLease)
	e.deleteCh = workflow.GetSignalChannel(ctx, entity.SignalDelete)
	return e
}

// register installs the query, update and signal handlers.
func (e *entityRun) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, entity.QueryState, func() (entity.State, error) {
		return e.snapshot(), nil
	}); err != nil {
		return fmt.Errorf("state query: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, entity.UpdateEnsureRunning, e.ensureRunning,
		workflow.UpdateHandlerOptions{Validator: e.validateEnsure}); err != nil {
		return fmt.Errorf("ensure-running update: %w", err)
	}
	if err := workflow.SetUpdateHandler(ctx, entity.UpdateDelete, e.deleteSandbox); err != nil {
		return fmt.Errorf("delete update: %w", err)
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var t entity.TouchSignal
			e.touchCh.Receive(ctx, &t)
			e.touch(ctx, t)
		}
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var r entity.ReleaseLeaseSignal
			e.releaseCh.Receive(ctx, &r)
			e.release(ctx, r)
		}
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var r entity.DeleteRequest
			e.deleteCh.Receive(ctx, &r)
			e.requestDelete(r)
		}
	})
	return nil
}

// validateEnsure rejects bad requests before they reach history.
func (e *entityRun) validateEnsure(_ workflow.Context, req entity.EnsureRequest) error {
	if e.deleteReq != nil || e.done {
		return temporal.NewApplicationError("the sandbox is being deleted; retry to start a new one", entity.ErrTypeEntityDeleting)
	}
	if l := req.Lease; l != nil {
		switch {
		case l.ID == "":
			return errors.New("lease id is required")
		case l.TTL <= 0:
			return fmt.Errorf("lease ttl must be positive, got %s", l.TTL)
		case l.TTL > entity.MaxLeaseTTL:
			return fmt.Errorf("lease ttl %s is longer than %s; renew it instead", l.TTL, entity.MaxLeaseTTL)
		}
		if _, renew := e.st.Leases[l.ID]; !renew && len(e.st.Leases) >= MaxLeases {
			return fmt.Errorf("too many live leases (%d)", MaxLeases)
		}
	}
	return nil
}

// ensureRunning records the use (and lease), waits until the main loop has
// the sandbox running, and says how long it is sure to stay up.
func (e *entityRun) ensureRunning(ctx workflow.Context, req entity.EnsureRequest) (entity.EnsureResult, error) {
	now := workflow.Now(ctx)
	e.use(now, req.UsedAt)
	if l := req.Lease; l != nil {
		e.st.Leases[l.ID] = now.Add(l.TTL)
	}
	before := e.st.SandboxID
	if req.SuspectSandboxID != "" && req.SuspectSandboxID == e.st.SandboxID && e.ready() {
		// Treat it as stopped: the main loop's start is a no-op for a sandbox
		// that does run, starts a stopped one and recreates a lost one.
		e.st.Phase, e.st.StoppedAt = entity.PhaseStopped, now
		if e.in.Config.AutoDelete > 0 {
			e.st.AutoDeleteAt = now.Add(e.in.Config.AutoDelete)
		}
	}
	if !e.ready() {
		e.wantUp = true
		epoch := e.failEpoch
		settled := func() bool { return e.ready() || e.failEpoch != epoch || e.done }
		if err := e.awaitUp(ctx, settled); err != nil {
			return entity.EnsureResult{}, err
		}
		switch {
		case e.done:
			return entity.EnsureResult{}, temporal.NewNonRetryableApplicationError("the thread was deleted", entity.ErrTypeEntityDeleted, nil)
		case e.ready():
		case e.failEpoch != epoch && e.st.ErrorType != "":
			return entity.EnsureResult{}, temporal.NewApplicationError("sandbox unavailable: "+e.st.Error, e.st.ErrorType)
		case e.failEpoch != epoch:
			return entity.EnsureResult{}, temporal.NewApplicationError("sandbox unavailable: "+e.st.Error, entity.ErrTypeSandboxUnavailable)
		default:
			return entity.EnsureResult{}, temporal.NewApplicationError(
				fmt.Sprintf("the sandbox is still being brought up after %s; retry", entity.MaxEnsureWait), entity.ErrTypeSandboxUnavailable)
		}
	}
	return entity.EnsureResult{
		SandboxID:    e.st.SandboxID,
		ToolboxURL:   e.st.ToolboxURL,
		Snapshot:     e.st.Snapshot,
		Generation:   e.st.Generation,
		RunningUntil: e.runningUntil(),
		Created:      e.st.SandboxID != before,
		LastUseAt:    e.st.LastUseAt,
		AutoStopAt:   e.stopDeadline(),
	}, nil
}

// awaitUp waits until settled, for at most entity.MaxEnsureWait from entityV1 (the
// timer is cancelled when settled wins, so it never fires later).
func (e *entityRun) awaitUp(ctx workflow.Context, settled func() bool) error {
	if e.version < entityV1 {
		return workflow.Await(ctx, settled)
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	_, err := workflow.AwaitWithOptions(tctx, workflow.AwaitOptions{
		Timeout:      entity.MaxEnsureWait,
		TimerOptions: workflow.TimerOptions{Summary: "ensure-running gives up"},
	}, settled)
	return err
}

// deleteSandbox (the delete update) asks the main loop to destroy the
// sandbox and end the workflow, and waits until it has.
func (e *entityRun) deleteSandbox(ctx workflow.Context, req entity.DeleteRequest) error {
	e.requestDelete(req)
	return workflow.Await(ctx, func() bool { return e.done })
}

// requestDelete records a delete (update or signal); the first one wins.
func (e *entityRun) requestDelete(req entity.DeleteRequest) {
	if e.deleteReq == nil && !e.done {
		e.deleteReq = &req
	}
}

// touch records uses seen by the API. It does not wake the main loop: the
// stop deadline only moves later, and the loop re-arms when its timer fires.
func (e *entityRun) touch(ctx workflow.Context, t entity.TouchSignal) {
	e.use(workflow.Now(ctx), t.At)
}

// release ends a lease. Finishing the work it covered is a use, and the stop
// deadline may move earlier, so the main loop re-evaluates. The use the
// signal reports (UsedAt) counts even when the lease had already expired.
func (e *entityRun) release(ctx workflow.Context, r entity.ReleaseLeaseSignal) {
	now := workflow.Now(ctx)
	if !r.UsedAt.IsZero() {
		e.use(now, r.UsedAt)
	}
	if _, ok := e.st.Leases[r.LeaseID]; !ok {
		return
	}
	delete(e.st.Leases, r.LeaseID)
	e.use(now, time.Time{})
	e.leaseReleased = true
}

// use moves LastUseAt forward (never backwards, never past the workflow's
// clock, so a skewed API clock cannot keep a sandbox alive).
func (e *entityRun) use(now, at time.Time) {
	if at.IsZero() || at.After(now) {
		at = now
	}
	if at.After(e.st.LastUseAt) {
		e.st.LastUseAt = at
	}
}

// ready reports whether an ensure-running can be answered right away.
func (e *entityRun) ready() bool {
	return e.st.Phase == entity.PhaseRunning && e.op == opNone && e.deleteReq == nil && !e.done
}

// stopDeadline is the earliest moment the sandbox may be stopped: AutoStop
// after the last use, and never before a live lease expires.
func (e *entityRun) stopDeadline() time.Time {
	d := e.st.LastUseAt.Add(e.in.Config.AutoStop)
	if e.st.LeasedUntil.After(d) {
		d = e.st.LeasedUntil
	}
	for _, exp := range e.st.Leases { // a max does not depend on map order
		if exp.After(d) {
			d = exp
		}
	}
	return d
}

// runningUntil is the earliest moment the sandbox could be stopped whatever
// happens next. Leases do not count: any of them may be released at once, and
// a release is a use, so the stop can never come before AutoStop after the
// last use. The API trusts this value to skip Temporal until then.
func (e *entityRun) runningUntil() time.Time {
	return e.st.LastUseAt.Add(e.in.Config.AutoStop)
}

// pruneLeases drops expired leases: they end by themselves, so an API process
// that died mid-command cannot keep a sandbox up forever.
func (e *entityRun) pruneLeases(now time.Time) {
	for id, exp := range e.st.Leases {
		if !exp.After(now) {
			delete(e.st.Leases, id)
			if exp.After(e.st.LeasedUntil) {
				e.st.LeasedUntil = exp
			}
		}
	}
}

// snapshot is a copy of the state for queries and ContinueAsNew.
func (e *entityRun) snapshot() entity.State {
	st := e.st
	st.Leases = make(map[string]time.Time, len(e.st.Leases))
	for k, v := range e.st.Leases {
		st.Leases[k] = v
	}
	if st.Phase == entity.PhaseRunning {
		st.AutoStopAt = e.stopDeadline()
	}
	return st
}
