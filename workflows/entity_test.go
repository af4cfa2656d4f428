package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/entity"
)

func TestEntityLadderStopsAfter15MinAndDeletesAfter2h(t *testing.T) {
	h := newHarness(t)
	var first ensureOutcome
	var mid entity.State
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.queryAt(time.Hour, &mid)
	h.deleteAt(3*time.Hour, &deleted)
	h.runThread(ladder)

	require.True(t, h.env.IsWorkflowCompleted())
	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, first.err)
	assert.Equal(t, "sbx-1", first.res.SandboxID)
	assert.Equal(t, 1, first.res.Generation)
	assert.True(t, first.res.Created)
	assert.Equal(t, t0.Add(15*time.Minute), first.res.RunningUntil)
	assert.Equal(t, []string{"create@00:00", "stop@00:15", "delete@02:15", "delete@03:00"}, h.calls)

	assert.Equal(t, entity.PhaseStopped, mid.Phase)
	assert.Equal(t, t0.Add(15*time.Minute), mid.StoppedAt)
	assert.Equal(t, t0.Add(2*time.Hour+15*time.Minute), mid.AutoDeleteAt)
	assert.True(t, deleted)

	assert.Equal(t, []string{"created/use", "stopped/idle_timer", "deleted/delete_timer", "deleted/user_delete"}, h.causes())
	// Auto-deleted: the thread lives on ("stopped" without a sandbox); user delete ends it.
	assert.Equal(t, "stopped", h.ledger[2].State)
	assert.Equal(t, "", h.ledger[2].SandboxID)
	assert.Equal(t, "deleted", h.ledger[3].State)
	assert.Equal(t, []string{"creating", "creating", "running", "stopped", "deleted", "deleted"}, h.states)
	for i, ev := range h.ledger {
		for _, other := range h.ledger[:i] {
			assert.NotEqual(t, other.DedupKey, ev.DedupKey, "ledger dedup keys must be unique per transition")
		}
	}
}

// TestEntityTouchesMoveTheDeadlineLazily: a touch only moves the deadline;
// the loop's timer is left alone unless the touch makes a refresh of
// Daytona's clock necessary sooner than that timer (once per refresh).
func TestEntityTouchesMoveTheDeadlineLazily(t *testing.T) {
	h := newHarness(t)
	var first ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.signal(10*time.Minute, entity.SignalTouch, entity.TouchSignal{})
	h.signal(20*time.Minute, entity.SignalTouch, entity.TouchSignal{})
	// A touch stamped in the future (skewed API clock) counts as now.
	h.signal(20*time.Minute, entity.SignalTouch, entity.TouchSignal{At: t0.Add(5 * time.Hour)})
	h.deleteAt(4*time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	// The workflow cannot tell whether Daytona saw the uses, so when a use
	// pushes the deadline past Daytona's backstop it resets Daytona's clock
	// (due AutoStop/2 after the last reset, here already past).
	assert.Equal(t, []string{"create@00:00", "refresh@00:10", "refresh@00:20", "stop@00:35", "delete@02:35", "delete@04:00"}, h.calls)
	h.assertBackstopNeverFired(ladder)
	// Each of the two touches re-armed the loop's timer once (for the
	// refresh); the timer then ran to the new deadline.
	var fires []string
	for _, id := range h.timersFired {
		fires = append(fires, hhmm(h.timersStarted[id].Sub(t0)))
	}
	assert.Equal(t, []string{"00:35", "02:35"}, fires)
	assert.Equal(t, []string{"00:15", "00:25"}, h.canceledAt())

	t.Run("many touches before the refresh is due re-arm once", func(t *testing.T) {
		h := newHarness(t)
		var first ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
		for m := 1; m <= 6; m++ {
			h.signal(time.Duration(m)*time.Minute, entity.SignalTouch, entity.TouchSignal{})
		}
		h.deleteAt(time.Hour, &deleted)
		h.runThread(ladder)

		require.NoError(t, h.env.GetWorkflowError())
		assert.Equal(t, []string{"create@00:00", "refresh@00:07:30", "stop@00:21", "delete@01:00"}, h.calls)
		h.assertBackstopNeverFired(ladder)
		// Six touches, one re-arm (for the refresh at 00:07:30); the other
		// canceled timer is the auto-delete's, canceled by the user delete.
		assert.Equal(t, []string{"00:15", "02:21"}, h.canceledAt())
	})
}

func TestEntityLeaseHoldsTheStop(t *testing.T) {
	t.Run("released early", func(t *testing.T) {
		h := newHarness(t)
		var first ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1", Lease: &entity.LeaseRequest{ID: "l1", TTL: time.Hour}}, &first)
		h.signal(50*time.Minute, entity.SignalReleaseLease, entity.ReleaseLeaseSignal{LeaseID: "l1"})
		h.deleteAt(4*time.Hour, &deleted)
		h.runThread(ladder)

		require.NoError(t, h.env.GetWorkflowError())
		assert.Equal(t, t0.Add(15*time.Minute), first.res.RunningUntil, "RunningUntil does not count on a releasable lease")
		// Daytona's clock is refreshed every AutoStop/2 while the sandbox is
		// kept up past its backstop; the release is a use.
		assert.Equal(t, []string{"create@00:00", "refresh@00:07:30", "refresh@00:15", "refresh@00:22:30", "refresh@00:30",
			"refresh@00:37:30", "refresh@00:45", "refresh@00:52:30", "stop@01:05", "delete@03:05", "delete@04:00"}, h.calls)
		h.assertBackstopNeverFired(ladder)
	})
	t.Run("expires by itself", func(t *testing.T) {
		h := newHarness(t)
		var first ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1", Lease: &entity.LeaseRequest{ID: "l1", TTL: time.Hour}}, &first)
		h.deleteAt(4*time.Hour, &deleted)
		h.runThread(ladder)

		require.NoError(t, h.env.GetWorkflowError())
		assert.Equal(t, []string{"create@00:00", "refresh@00:07:30", "refresh@00:15", "refresh@00:22:30", "refresh@00:30",
			"refresh@00:37:30", "refresh@00:45", "stop@01:00", "delete@03:00", "delete@04:00"}, h.calls)
		h.assertBackstopNeverFired(ladder)
	})
}

func TestEntityCommandRunningAcrossTheDeadline(t *testing.T) {
	h := newHarness(t)
	var first, cmd ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	// At 00:10 the API runs a command with a 30 min timeout: it takes a lease
	// for it inside ensure-running and releases it when the command ends at 00:35.
	h.ensure(10*time.Minute, entity.EnsureRequest{RequestID: "r2", Lease: &entity.LeaseRequest{ID: "cmd", TTL: 30 * time.Minute}}, &cmd)
	h.signal(35*time.Minute, entity.SignalReleaseLease, entity.ReleaseLeaseSignal{LeaseID: "cmd"})
	h.deleteAt(3*time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, cmd.err)
	assert.False(t, cmd.res.Created)
	assert.Equal(t, t0.Add(25*time.Minute), cmd.res.RunningUntil, "the lease may be released early")
	assert.Equal(t, []string{"create@00:00", "refresh@00:10", "refresh@00:17:30", "refresh@00:25", "refresh@00:35",
		"stop@00:50", "delete@02:50", "delete@03:00"}, h.calls)
	h.assertBackstopNeverFired(ladder)
}

func TestEntityRestartFromStopped(t *testing.T) {
	h := newHarness(t)
	var first, again ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.ensure(time.Hour, entity.EnsureRequest{RequestID: "r2"}, &again)
	h.deleteAt(5*time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, again.err)
	assert.Equal(t, first.res.SandboxID, again.res.SandboxID)
	assert.False(t, again.res.Created)
	assert.Equal(t, t0.Add(time.Hour+15*time.Minute), again.res.RunningUntil)
	assert.Equal(t, []string{"create@00:00", "stop@00:15", "start@01:00", "stop@01:15", "delete@03:15", "delete@05:00"}, h.calls)
	// The auto-delete timer of the first stop (02:15) lost the race to the
	// restart: it was canceled and never fired.
	assert.Equal(t, []string{"02:15"}, h.canceledAt())
	for _, id := range h.timersFired {
		assert.NotContains(t, h.timersCanceled, id)
	}
}

func TestEntityRecreateAfterAutoDelete(t *testing.T) {
	h := newHarness(t)
	var first, again ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.ensure(3*time.Hour, entity.EnsureRequest{RequestID: "r2"}, &again)
	h.deleteAt(4*time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, again.err)
	assert.Equal(t, "sbx-2", again.res.SandboxID)
	assert.Equal(t, 2, again.res.Generation)
	assert.True(t, again.res.Created)
	require.Len(t, h.ensureIn, 2)
	assert.Equal(t, 2, h.ensureIn[1].Generation)
	assert.Equal(t, []string{"create@00:00", "stop@00:15", "delete@02:15", "create@03:00", "stop@03:15", "delete@04:00"}, h.calls)
}

func TestEntityRestartOfALostSandboxCreatesTheNextGeneration(t *testing.T) {
	h := newHarness(t)
	h.startGone = true
	var first, again ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.ensure(time.Hour, entity.EnsureRequest{RequestID: "r2"}, &again)
	h.deleteAt(2*time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, again.err)
	assert.Equal(t, "sbx-2", again.res.SandboxID)
	assert.True(t, again.res.Created)
	assert.Equal(t, []string{"create@00:00", "stop@00:15", "start@01:00", "create@01:00", "stop@01:15", "delete@02:00"}, h.calls)
}

func TestEntityUserDelete(t *testing.T) {
	t.Run("while creating", func(t *testing.T) {
		h := newHarness(t, 3*time.Minute)
		var first ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
		h.deleteAt(time.Minute, &deleted)
		h.runThread(ladder)

		require.True(t, h.env.IsWorkflowCompleted())
		require.NoError(t, h.env.GetWorkflowError())
		assert.True(t, deleted)
		var ae *temporal.ApplicationError
		require.ErrorAs(t, first.err, &ae, "the waiting ensure learns the thread is gone")
		assert.Equal(t, entity.ErrTypeEntityDeleted, ae.Type())
		// The delete does not wait behind a slow Daytona: it cancels the
		// create (which never completes) and deletes the generation by name
		// in case the create landed.
		assert.Equal(t, []string{"delete@00:01"}, h.calls) // the mock records on completion
		require.Len(t, h.ensureIn, 0)
		assert.Equal(t, []string{"deleted/user_delete"}, h.causes())
	})
	t.Run("an ensure during the delete is refused with a type the API can act on", func(t *testing.T) {
		h := newHarness(t, 3*time.Minute)
		var first, during ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
		h.deleteAt(time.Minute, &deleted)
		h.ensure(time.Minute, entity.EnsureRequest{RequestID: "r2"}, &during)
		h.runThread(ladder)

		require.True(t, deleted)
		var ae *temporal.ApplicationError
		require.ErrorAs(t, during.rejected, &ae, "the validator refuses the ensure")
		assert.Equal(t, entity.ErrTypeEntityDeleting, ae.Type())
	})
	t.Run("while running", func(t *testing.T) {
		h := newHarness(t)
		var first ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
		h.deleteAt(5*time.Minute, &deleted)
		h.runThread(ladder)

		require.NoError(t, h.env.GetWorkflowError())
		assert.True(t, deleted)
		assert.Equal(t, []string{"create@00:00", "delete@00:05"}, h.calls)
		assert.Equal(t, []string{"00:15"}, h.canceledAt(), "the auto-stop timer is canceled")
	})
	t.Run("while stopped", func(t *testing.T) {
		h := newHarness(t)
		var first ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
		h.deleteAt(30*time.Minute, &deleted)
		h.runThread(ladder)

		require.NoError(t, h.env.GetWorkflowError())
		assert.True(t, deleted)
		assert.Equal(t, []string{"create@00:00", "stop@00:15", "delete@00:30"}, h.calls)
		assert.Equal(t, []string{"02:15"}, h.canceledAt(), "the auto-delete timer is canceled")
	})
}

func TestEntityContinueAsNewKeepsPendingSignalsAndDeadlines(t *testing.T) {
	h := newHarness(t)
	var first, second ensureOutcome
	h.ensure(0, entity.EnsureRequest{RequestID: "r1", Lease: &entity.LeaseRequest{ID: "l-long", TTL: time.Hour}}, &first)
	h.ensure(time.Minute, entity.EnsureRequest{RequestID: "r2", Lease: &entity.LeaseRequest{ID: "l-short", TTL: 30 * time.Minute}}, &second)
	// Signals buffered without a workflow task are delivered in the same task
	// as the CAN suggestion (at 00:10:01). They must not be lost: the main
	// loop lets their receivers run and drains the channels before CAN.
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflowSkippingWorkflowTask(entity.SignalTouch, entity.TouchSignal{})
		h.env.SignalWorkflowSkippingWorkflowTask(entity.SignalReleaseLease, entity.ReleaseLeaseSignal{LeaseID: "l-short"})
	}, 10*time.Minute)
	h.env.RegisterDelayedCallback(func() { h.env.SetContinueAsNewSuggested(true) }, 10*time.Minute+time.Second)
	h.runThread(ladder)

	require.True(t, h.env.IsWorkflowCompleted())
	in := decodeContinueAsNew(t, h.env.GetWorkflowError())
	require.NotNil(t, in.State)
	require.NoError(t, second.err)
	assert.Equal(t, entity.KindThread, in.Kind)
	assert.Equal(t, ladder, in.Config)
	assert.Equal(t, entity.PhaseRunning, in.State.Phase)
	assert.Equal(t, "sbx-1", in.State.SandboxID)
	assert.Equal(t, 1, in.State.Generation)
	assert.Equal(t, t0.Add(10*time.Minute+time.Second), in.State.LastUseAt, "the touch delivered with the suggestion is applied")
	assert.Equal(t, map[string]time.Time{"l-long": t0.Add(time.Hour)}, in.State.Leases, "the release sent with the suggestion is applied")
	assert.Equal(t, []string{"create@00:00", "refresh@00:07:30"}, h.calls)

	// The next run continues from the carried state: no create, and the stop
	// happens at the absolute deadline (the lease's expiry), not re-stretched.
	h2 := newHarness(t)
	h2.env.SetStartTime(t0.Add(10*time.Minute + time.Second))
	var deleted bool
	h2.deleteAt(2*time.Hour, &deleted)
	h2.env.ExecuteWorkflow(entity.ThreadWorkflowName, in)
	require.NoError(t, h2.env.GetWorkflowError())
	// When Daytona's clock was last reset is not carried: the new run resets
	// it at once.
	assert.Equal(t, []string{"refresh@00:10:01", "refresh@00:17:31", "refresh@00:25:01", "refresh@00:32:31", "refresh@00:40:01",
		"refresh@00:47:31", "stop@01:00", "delete@02:10:01"}, h2.calls)
	assert.Empty(t, h2.ensureIn, "the carried sandbox is not recreated")
}

func TestEntityFilesSessionOnlyStops(t *testing.T) {
	h := newHarness(t)
	var first, again ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.ensure(9*time.Hour, entity.EnsureRequest{RequestID: "r2"}, &again)
	h.deleteAt(12*time.Hour, &deleted)
	h.env.ExecuteWorkflow(entity.FilesWorkflowName, entity.Input{Kind: entity.KindFiles, UserID: "u1",
		Config: entity.Config{AutoStop: time.Hour, AutoDelete: 2 * time.Hour}})

	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, again.err)
	assert.Equal(t, first.res.SandboxID, again.res.SandboxID, "the stopped files sandbox is restarted, not recreated")
	assert.Equal(t, []string{"create@00:00", "stop@01:00", "start@09:00", "stop@10:00", "delete@12:00"}, h.calls)
	require.NotEmpty(t, h.ensureIn)
	assert.Equal(t, entity.KindFiles, h.ensureIn[0].Kind)
	assert.Equal(t, time.Duration(0), h.ensureIn[0].AutoDelete)
	assert.Equal(t, "stopped/idle_timer", h.causes()[1])
}

func TestEntityCreateFailureThenRetry(t *testing.T) {
	h := newHarness(t)
	h.createErr = []error{temporal.NewNonRetryableApplicationError("quota exceeded", "DaytonaBadRequest", errors.New("403"))}
	var first, again ensureOutcome
	var mid entity.State
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.queryAt(2*time.Minute, &mid)
	h.ensure(5*time.Minute, entity.EnsureRequest{RequestID: "r2"}, &again)
	h.deleteAt(time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	var ae *temporal.ApplicationError
	require.ErrorAs(t, first.err, &ae)
	assert.Equal(t, entity.ErrTypeSandboxUnavailable, ae.Type())
	assert.Equal(t, entity.PhaseError, mid.Phase)
	assert.Contains(t, mid.Error, "quota exceeded")
	require.NoError(t, again.err)
	assert.Equal(t, "sbx-1", again.res.SandboxID)
	assert.Equal(t, []string{"create-failed@00:00", "create@00:05", "stop@00:20", "delete@01:00"}, h.calls)
	assert.Equal(t, "failed/error", h.causes()[0])
	assert.Equal(t, "error", h.ledger[0].State)
}

func TestEntityEnsureValidatorRejectsBadLeases(t *testing.T) {
	h := newHarness(t)
	var first, negative, noID ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.ensure(time.Minute, entity.EnsureRequest{RequestID: "r2", Lease: &entity.LeaseRequest{ID: "l", TTL: -time.Second}}, &negative)
	h.ensure(time.Minute, entity.EnsureRequest{RequestID: "r3", Lease: &entity.LeaseRequest{TTL: time.Minute}}, &noID)
	h.deleteAt(2*time.Minute, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	assert.ErrorContains(t, negative.rejected, "must be positive")
	assert.ErrorContains(t, noID.rejected, "lease id is required")
}

func TestEntityConcurrentEnsuresCreateOnce(t *testing.T) {
	h := newHarness(t, time.Minute)
	outs := make([]ensureOutcome, 5)
	var deleted bool
	for i := range outs {
		h.ensure(time.Duration(i)*10*time.Second, entity.EnsureRequest{RequestID: string(rune('a' + i))}, &outs[i])
	}
	h.deleteAt(10*time.Minute, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	for i, o := range outs {
		require.NoError(t, o.err, i)
		assert.Equal(t, "sbx-1", o.res.SandboxID, i)
	}
	h.env.AssertNumberOfCalls(t, "EnsureSandbox", 1)
}

// TestEntityRefreshesDaytonaBeforeItsBackstop: Daytona's own auto-stop (the
// backstop, AutoStop rounded up plus a minute) counts from the last activity
// Daytona saw, which a use reported only to the workflow (a lease taken with
// POST /leases, POST /threads on an existing thread) does not reset. The
// workflow must refresh Daytona's clock before the backstop can stop a
// sandbox it keeps running, whether a lease holds it or a later use does.
func TestEntityRefreshesDaytonaBeforeItsBackstop(t *testing.T) {
	backstop := 16 * time.Minute // Daytona stops at last activity + 16 min (AutoStop 15)
	t.Run("lease taken without toolbox traffic", func(t *testing.T) {
		h := newHarness(t)
		var first, lease ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
		h.ensure(10*time.Minute, entity.EnsureRequest{RequestID: "r2", Lease: &entity.LeaseRequest{ID: "l1", TTL: time.Hour}}, &lease)
		h.deleteAt(3*time.Hour, &deleted)
		h.runThread(ladder)

		require.NoError(t, h.env.GetWorkflowError())
		require.NoError(t, lease.err)
		require.GreaterOrEqual(t, len(h.calls), 2)
		assert.Equal(t, "create@00:00", h.calls[0])
		assert.Equal(t, "refresh@00:10", h.calls[1], "Daytona's clock must be reset before %s", hhmm(backstop))
		assert.Contains(t, h.calls, "stop@01:10")
		h.assertBackstopNeverFired(ladder)
	})
	t.Run("use without toolbox traffic", func(t *testing.T) {
		h := newHarness(t)
		var first, again ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
		h.ensure(10*time.Minute, entity.EnsureRequest{RequestID: "r2"}, &again)
		h.deleteAt(time.Hour, &deleted)
		h.runThread(ladder)

		require.NoError(t, h.env.GetWorkflowError())
		assert.Equal(t, []string{"create@00:00", "refresh@00:10", "stop@00:25", "delete@01:00"}, h.calls)
		h.assertBackstopNeverFired(ladder)
	})
}

// TestEntityRunningUntilIgnoresReleasableLeases: RunningUntil is what the API
// trusts to skip Temporal, so it must not count on a lease that anyone may
// release early (a release moves the stop to release+AutoStop).
func TestEntityRunningUntilIgnoresReleasableLeases(t *testing.T) {
	h := newHarness(t)
	var first, leased ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.ensure(time.Minute, entity.EnsureRequest{RequestID: "r2", Lease: &entity.LeaseRequest{ID: "l1", TTL: time.Hour}}, &leased)
	h.signal(2*time.Minute, entity.SignalReleaseLease, entity.ReleaseLeaseSignal{LeaseID: "l1"})
	h.deleteAt(time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, leased.err)
	stopAt := ""
	for _, c := range h.calls {
		if strings.HasPrefix(c, "stop@") {
			stopAt = strings.TrimPrefix(c, "stop@")
		}
	}
	require.NotEmpty(t, stopAt, "%v", h.calls)
	assert.False(t, leased.res.RunningUntil.After(t0.Add(17*time.Minute)),
		"RunningUntil %s is later than the stop at %s", hhmm(leased.res.RunningUntil.Sub(t0)), stopAt)
	assert.Equal(t, t0.Add(16*time.Minute), leased.res.RunningUntil)
	// The answer also carries the state a query would show (the API answers
	// a create from it): the last use, and the deadline the lease holds.
	assert.Equal(t, t0, first.res.LastUseAt)
	assert.Equal(t, t0.Add(15*time.Minute), first.res.AutoStopAt)
	assert.Equal(t, t0.Add(time.Minute), leased.res.LastUseAt)
	assert.Equal(t, t0.Add(time.Hour+time.Minute), leased.res.AutoStopAt, "the lease holds the stop")
}

// TestEntityFailedStartKeepsTheAutoDelete: when starting a stopped sandbox
// fails, the waiting request gets the error, but the sandbox still exists
// and must still be deleted AutoDelete after it stopped (the entity must not
// sit in "error" with no timer, holding a stopped sandbox forever).
func TestEntityFailedStartKeepsTheAutoDelete(t *testing.T) {
	h := newHarness(t)
	h.startErr = temporal.NewNonRetryableApplicationError("start refused", "DaytonaInvalidState", nil)
	var first, again ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.ensure(time.Hour, entity.EnsureRequest{RequestID: "r2"}, &again)
	h.deleteAt(4*time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	var ae *temporal.ApplicationError
	require.ErrorAs(t, again.err, &ae)
	assert.Equal(t, entity.ErrTypeSandboxUnavailable, ae.Type())
	assert.Equal(t, []string{"create@00:00", "stop@00:15", "start@01:00", "delete@02:15", "delete@04:00"}, h.calls)
}

// A caller that found the sandbox not running (Daytona's backstop or an
// operator stopped it) names it in its next ensure; the workflow starts it
// again instead of answering with the dead sandbox.
func TestEntityEnsureVerifiesASuspectSandbox(t *testing.T) {
	h := newHarness(t)
	var first, suspect, stale ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.ensure(5*time.Minute, entity.EnsureRequest{RequestID: "r2", SuspectSandboxID: "sbx-1"}, &suspect)
	// A suspicion about a sandbox the workflow no longer has changes nothing.
	h.ensure(6*time.Minute, entity.EnsureRequest{RequestID: "r3", SuspectSandboxID: "sbx-old"}, &stale)
	h.deleteAt(time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, suspect.err)
	require.NoError(t, stale.err)
	assert.Equal(t, "sbx-1", suspect.res.SandboxID)
	assert.Equal(t, []string{"create@00:00", "start@00:05", "refresh@00:12:30", "stop@00:21", "delete@01:00"}, h.calls)
	h.assertBackstopNeverFired(ladder)
}

// TestEntityLeaseSurvivesAFailedRefresh (issue 12, finding 1): a refresh of
// Daytona's clock that fails (a Daytona 503 burst outlasting the activity's
// retries, a worker outage) must be retried soon, and counts only once it
// succeeded: Daytona's backstop is AutoStop+1min after the last reset it saw,
// and it must never stop a sandbox under a one-hour command.
func TestEntityLeaseSurvivesAFailedRefresh(t *testing.T) {
	h := newHarness(t)
	unavailable := temporal.NewApplicationError("refresh activity: 503", "DaytonaUnavailable")
	// Two whole refreshes fail (each activity tries three times).
	h.refreshErr = []error{unavailable, unavailable, unavailable, unavailable, unavailable, unavailable}
	var first ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1", Lease: &entity.LeaseRequest{ID: "cmd", TTL: time.Hour}}, &first)
	h.deleteAt(4*time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	h.assertBackstopNeverFired(ladder)
	// Each failed refresh is retried 30 s later (after the activity's own
	// three attempts); the cadence restarts from the one that succeeded.
	assert.Equal(t, []string{"create@00:00",
		"refresh-failed@00:07:30", "refresh-failed@00:07:31", "refresh-failed@00:07:32",
		"refresh-failed@00:08:02", "refresh-failed@00:08:03", "refresh-failed@00:08:04",
		"refresh@00:08:34", "refresh@00:16:04", "refresh@00:23:34", "refresh@00:31:04", "refresh@00:38:34", "refresh@00:46:04",
		"stop@01:00", "delete@03:00", "delete@04:00"}, h.calls)
}

// TestEntityRefreshFindingTheSandboxGoneLosesIt: a refresh that finds the
// sandbox gone ends the generation at once, so the next use creates the
// next one instead of being answered with a sandbox that no longer exists.
func TestEntityRefreshFindingTheSandboxGoneLosesIt(t *testing.T) {
	h := newHarness(t)
	h.refreshErr = []error{temporal.NewNonRetryableApplicationError("sandbox sbx-1 is gone", entity.ErrTypeSandboxGone, nil)}
	var first, again ensureOutcome
	var mid entity.State
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1", Lease: &entity.LeaseRequest{ID: "cmd", TTL: time.Hour}}, &first)
	h.queryAt(9*time.Minute, &mid)
	h.ensure(10*time.Minute, entity.EnsureRequest{RequestID: "r2"}, &again)
	h.deleteAt(time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	assert.Equal(t, entity.PhaseDeleted, mid.Phase)
	assert.Empty(t, mid.SandboxID)
	assert.Empty(t, mid.Leases, "the lease covered work in the lost sandbox")
	require.NoError(t, again.err)
	assert.Equal(t, "sbx-2", again.res.SandboxID)
	assert.True(t, again.res.Created)
	assert.Equal(t, []string{"create@00:00", "refresh-failed@00:07:30", "create@00:10", "stop@00:25", "delete@01:00"}, h.calls)
	assert.Equal(t, []string{"created/use", "lost/error", "created/use", "stopped/idle_timer", "deleted/user_delete"}, h.causes())
}

// TestEntityTouchInTheStopTimersTaskCounts (issue 12, finding 2): a touch
// delivered in the same workflow task as the stop timer must be applied
// before the loop decides to stop. (The API extended its cached window when
// it sent the touch, so a stop here would serve it a stopped sandbox.)
func TestEntityTouchInTheStopTimersTaskCounts(t *testing.T) {
	h := newHarness(t)
	var first ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	// Buffered without a workflow task of its own: it arrives with the timer.
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflowSkippingWorkflowTask(entity.SignalTouch, entity.TouchSignal{At: t0.Add(14*time.Minute + 50*time.Second)})
	}, 14*time.Minute+50*time.Second)
	h.deleteAt(time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	assert.Equal(t, []string{"create@00:00", "refresh@00:15", "stop@00:29:50", "delete@01:00"}, h.calls)
	h.assertBackstopNeverFired(ladder)
}

// TestEntityRunsOnTheOldVersionKeepTheirCommands: a run that began before
// entityV1 (its history has no version marker) must replay, and go on, with
// the old commands; only new runs get the new ones (versions.go).
func TestEntityRunsOnTheOldVersionKeepTheirCommands(t *testing.T) {
	h := newHarness(t)
	h.env.OnGetVersion(entityChangeID, workflow.DefaultVersion, entityLatest).Return(workflow.DefaultVersion)
	var first ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1", Lease: &entity.LeaseRequest{ID: "l1", TTL: time.Hour}}, &first)
	h.deleteAt(4*time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	assert.Equal(t, []string{"create@00:00", "refresh@00:15", "refresh@00:30", "refresh@00:45",
		"stop@01:00", "delete@03:00", "delete@04:00"}, h.calls)
	for id, d := range h.timerLengths {
		assert.NotEqual(t, entity.MaxEnsureWait, d, "timer %s: old runs start no ensure-running timer", id)
	}
}

// TestEntityReleaseCarriesTheUse: the API ends a lease with one signal that
// also reports when the work ended (instead of a touch and a release). The
// use counts even when the workflow no longer holds the lease (it expired,
// or the API took it where the workflow never saw it); an old payload without
// it counts as before: no use.
func TestEntityReleaseCarriesTheUse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signal any
		stop   string
	}{
		{"with the use", entity.ReleaseLeaseSignal{LeaseID: "gone", UsedAt: t0.Add(12 * time.Minute)}, "stop@00:27"},
		{"old payload", map[string]any{"LeaseID": "gone"}, "stop@00:15"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var first ensureOutcome
			var deleted bool
			h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
			h.signal(12*time.Minute+10*time.Second, entity.SignalReleaseLease, tc.signal)
			h.deleteAt(time.Hour, &deleted)
			h.runThread(ladder)

			require.NoError(t, h.env.GetWorkflowError())
			assert.Contains(t, h.calls, tc.stop, "%v", h.calls)
		})
	}
}

// TestEntityEnsureGivesUpAfterMaxEnsureWait (issue 12, finding 5): while
// Daytona is slow, a waiting ensure-running answers "unavailable, retry"
// after entity.MaxEnsureWait instead of holding one of the workflow's ten in-flight
// update slots until the create ends; the create goes on, and a later ensure
// gets its sandbox.
func TestEntityEnsureGivesUpAfterMaxEnsureWait(t *testing.T) {
	h := newHarness(t, 5*time.Minute)
	var first, later ensureOutcome
	var deleted bool
	var answered time.Duration
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(entity.UpdateEnsureRunning, "r1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { first.rejected = err },
			OnAccept: func() {},
			OnComplete: func(_ any, err error) {
				first.err = err
				answered = h.env.Now().Sub(t0)
			},
		}, entity.EnsureRequest{RequestID: "r1"})
	}, 0)
	h.ensure(6*time.Minute, entity.EnsureRequest{RequestID: "r2"}, &later)
	h.deleteAt(time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	var ae *temporal.ApplicationError
	require.ErrorAs(t, first.err, &ae)
	assert.Equal(t, entity.ErrTypeSandboxUnavailable, ae.Type())
	assert.Contains(t, ae.Error(), "still being brought up")
	assert.Equal(t, entity.MaxEnsureWait, answered)
	require.NoError(t, later.err)
	assert.Equal(t, "sbx-1", later.res.SandboxID)
	assert.Equal(t, []string{"create@00:05", "refresh@00:12:30", "stop@00:21", "delete@01:00"}, h.calls)
}

// TestEntityDeleteSignal (issue 12, finding 5): a delete sent as a signal
// (which needs no update slot) destroys the sandbox and ends the workflow,
// also while a create is stuck behind a slow Daytona.
func TestEntityDeleteSignal(t *testing.T) {
	t.Run("while running", func(t *testing.T) {
		h := newHarness(t)
		var first ensureOutcome
		h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
		h.signal(5*time.Minute, entity.SignalDelete, entity.DeleteRequest{RequestID: "d1", Cause: "user_delete"})
		h.runThread(ladder)

		require.True(t, h.env.IsWorkflowCompleted())
		require.NoError(t, h.env.GetWorkflowError())
		assert.Equal(t, []string{"create@00:00", "delete@00:05"}, h.calls)
		assert.Equal(t, []string{"created/use", "deleted/user_delete"}, h.causes())
	})
	t.Run("while a create is stuck", func(t *testing.T) {
		h := newHarness(t, 20*time.Minute)
		var first ensureOutcome
		h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
		h.signal(time.Minute, entity.SignalDelete, entity.DeleteRequest{RequestID: "d1"})
		h.runThread(ladder)

		require.True(t, h.env.IsWorkflowCompleted())
		require.NoError(t, h.env.GetWorkflowError())
		assert.Equal(t, []string{"delete@00:01"}, h.calls, "the create was cancelled; the generation is deleted by name")
		var ae *temporal.ApplicationError
		require.ErrorAs(t, first.err, &ae)
		assert.Equal(t, entity.ErrTypeEntityDeleted, ae.Type())
	})
}

// TestEntityFailedDestroyRemembersTheGenerationLeftBehind (issue 12, finding
// 6): when a user delete cannot destroy the sandbox, the thread row records
// the highest generation that may be left behind — here generation 2, whose
// create never answered — so a revived thread starts above it and never
// adopts a sandbox of its earlier life.
func TestEntityFailedDestroyRemembersTheGenerationLeftBehind(t *testing.T) {
	h := newHarness(t)
	var first, second ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	// After the auto-delete (02:15) a create of generation 2 fails as if its
	// result was lost; then Daytona refuses deletes.
	h.env.RegisterDelayedCallback(func() {
		h.mu.Lock()
		h.createErr = []error{temporal.NewNonRetryableApplicationError("lost", "DaytonaTimeout", nil)}
		h.deleteErr = temporal.NewNonRetryableApplicationError("daytona down", "DaytonaUnavailable", nil)
		h.mu.Unlock()
	}, 2*time.Hour+30*time.Minute)
	h.ensure(2*time.Hour+31*time.Minute, entity.EnsureRequest{RequestID: "r2"}, &second)
	h.deleteAt(3*time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	require.True(t, deleted)
	assert.Equal(t, []string{"create@00:00", "stop@00:15", "delete@02:15", "create-failed@02:31", "delete-failed@03:00"}, h.calls)
	last := h.ledger[len(h.ledger)-1]
	assert.Equal(t, "deleted", last.State)
	assert.Equal(t, 2, last.Generation, "the generation a create may have left behind")
}

// TestEntityAFailingStopBacksOff (issue 12, finding 4): a stop Daytona keeps
// refusing is retried with a growing delay (a minute, doubling, at most an
// hour), not every minute for ever (≈ 16k history events a day); once it
// succeeds the ladder goes on.
func TestEntityAFailingStopBacksOff(t *testing.T) {
	h := newHarness(t)
	h.stopErr = temporal.NewNonRetryableApplicationError("stop sandbox: 400", "DaytonaInvalidState", nil)
	var first ensureOutcome
	var deleted bool
	h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
	h.env.RegisterDelayedCallback(func() {
		h.mu.Lock()
		h.stopErr = nil
		h.mu.Unlock()
	}, 24*time.Hour)
	h.deleteAt(30*time.Hour, &deleted)
	h.runThread(ladder)

	require.NoError(t, h.env.GetWorkflowError())
	failed := 0
	for _, c := range h.calls {
		if strings.HasPrefix(c, "stop-failed@") {
			failed++
		}
	}
	assert.Equal(t, []string{"stop-failed@00:15", "stop-failed@00:16", "stop-failed@00:18", "stop-failed@00:22", "stop-failed@00:30",
		"stop-failed@00:46", "stop-failed@01:18", "stop-failed@02:18"}, h.calls[1:9])
	assert.Less(t, failed, 35, "a day of failing stops: %d attempts", failed)
	assert.Contains(t, h.calls, "stop@24:18", "the first retry after Daytona recovered stops it")
}
