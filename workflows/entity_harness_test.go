package workflows

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/entity"
)

// t0 is the virtual start of every lifecycle test.
var t0 = time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)

var ladder = entity.Config{AutoStop: 15 * time.Minute, AutoDelete: 2 * time.Hour}

// harness runs an entity workflow under the time-skipping test suite with
// every activity mocked by a tiny in-memory Daytona, and records what
// happened when (offsets from t0 as hh:mm).
type harness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment

	mu         sync.Mutex
	calls      []string
	ledger     []activities.LifecycleEvent
	states     []string // SandboxState search attribute upserts
	ensureIn   []activities.EnsureSandboxInput
	createErr  []error // returned by the next EnsureSandbox calls, in order
	startGone  bool
	startErr   error   // returned by every StartSandbox call when set
	refreshErr []error // returned by the next RefreshSandbox calls, in order
	deleteErr  error   // returned by every DeleteSandbox call when set
	stopErr    error   // returned by every StopSandbox call when set

	// daytona is what Daytona's clock saw, for its backstop: the times the
	// workflow reset it (create, start, successful refresh) and ended its
	// run (stop, delete).
	daytona []daytonaEvent

	timersStarted  map[string]time.Time // timer id -> when it would fire
	timerLengths   map[string]time.Duration
	timersCanceled []string
	timersFired    []string
}

// newTestEnvironment is the SDK's test environment with a deadlock detector
// that allows a minute: under -race on a loaded 2-core machine a workflow
// task took longer than the default second with no deadlock in it ("didn't
// yield for over 1s", seen in TestEntityStopRecordsItsDeadline). Workflows
// that block for real still fail, a minute later.
func newTestEnvironment() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute})
	return env
}

// newHarness builds the environment; createDelay, when given, is how long
// each create takes on the workflow clock.
func newHarness(t *testing.T, createDelay ...time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, env: newTestEnvironment(), timersStarted: map[string]time.Time{}, timerLengths: map[string]time.Duration{}}
	env := h.env
	env.SetStartTime(t0)
	env.RegisterWorkflowWithOptions(ThreadWorkflow, workflow.RegisterOptions{Name: entity.ThreadWorkflowName})
	env.RegisterWorkflowWithOptions(FilesWorkflow, workflow.RegisterOptions{Name: entity.FilesWorkflowName})
	(&activities.Activities{}).Register(env)

	createCall := env.OnActivity(activities.NameEnsureSandbox, mock.Anything, mock.Anything)
	if len(createDelay) > 0 {
		createCall = createCall.After(createDelay[0])
	}
	createCall.Return(
		func(_ context.Context, in activities.EnsureSandboxInput) (activities.SandboxInfo, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.ensureIn = append(h.ensureIn, in)
			if len(h.createErr) > 0 {
				err := h.createErr[0]
				h.createErr = h.createErr[1:]
				h.calls = append(h.calls, "create-failed@"+h.at())
				return activities.SandboxInfo{}, err
			}
			h.calls = append(h.calls, "create@"+h.at())
			h.daytona = append(h.daytona, daytonaEvent{h.env.Now(), true})
			return activities.SandboxInfo{
				SandboxID: fmt.Sprintf("sbx-%d", in.Generation), Name: fmt.Sprintf("tb-%s-%d", in.Kind, in.Generation),
				ToolboxURL: "http://toolbox/sbx", Snapshot: "snap-1", Generation: in.Generation,
			}, nil
		}).Maybe()
	env.OnActivity(activities.NameStartSandbox, mock.Anything, mock.Anything).Return(
		func(_ context.Context, ref activities.SandboxRef) (activities.SandboxInfo, error) {
			h.record("start@" + h.at())
			if h.startGone {
				return activities.SandboxInfo{}, temporal.NewNonRetryableApplicationError("gone", entity.ErrTypeSandboxGone, nil)
			}
			if h.startErr != nil {
				return activities.SandboxInfo{}, h.startErr
			}
			h.clock(true)
			return activities.SandboxInfo{SandboxID: ref.SandboxID, ToolboxURL: "http://toolbox/sbx", Snapshot: "snap-1", Generation: ref.Generation}, nil
		}).Maybe()
	env.OnActivity(activities.NameStopSandbox, mock.Anything, mock.Anything).Return(
		func(_ context.Context, ref activities.SandboxRef) (activities.StopResult, error) {
			h.mu.Lock()
			err := h.stopErr
			h.mu.Unlock()
			if err != nil {
				h.record("stop-failed@" + h.at())
				return activities.StopResult{}, err
			}
			h.record("stop@" + h.at())
			h.clock(false)
			return activities.StopResult{}, nil
		}).Maybe()
	env.OnActivity(activities.NameDeleteSandbox, mock.Anything, mock.Anything).Return(
		func(_ context.Context, ref activities.SandboxRef) error {
			h.mu.Lock()
			err := h.deleteErr
			h.mu.Unlock()
			if err != nil {
				h.record("delete-failed@" + h.at())
				return err
			}
			h.record("delete@" + h.at())
			h.clock(false)
			return nil
		}).Maybe()
	env.OnActivity(activities.NameRefreshSandbox, mock.Anything, mock.Anything).Return(
		func(_ context.Context, ref activities.SandboxRef) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.refreshErr) > 0 {
				err := h.refreshErr[0]
				h.refreshErr = h.refreshErr[1:]
				h.calls = append(h.calls, "refresh-failed@"+h.at())
				return err
			}
			h.calls = append(h.calls, "refresh@"+h.at())
			h.daytona = append(h.daytona, daytonaEvent{h.env.Now(), true})
			return nil
		}).Maybe()
	env.OnActivity(activities.NameRecordLifecycleEvent, mock.Anything, mock.Anything).Return(
		func(_ context.Context, ev activities.LifecycleEvent) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.ledger = append(h.ledger, ev)
			return nil
		}).Maybe()
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		if v, ok := sa.GetKeyword(entity.AttrSandboxState); ok {
			h.mu.Lock()
			h.states = append(h.states, v)
			h.mu.Unlock()
		}
	}).Return(nil).Maybe()

	env.SetOnTimerScheduledListener(func(id string, d time.Duration) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.timersStarted[id] = env.Now().Add(d)
		h.timerLengths[id] = d
	})
	env.SetOnTimerCanceledListener(func(id string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.timersCanceled = append(h.timersCanceled, id)
	})
	env.SetOnTimerFiredListener(func(id string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.timersFired = append(h.timersFired, id)
	})
	return h
}

// daytonaEvent is a reset of Daytona's last-activity clock (reset) or the
// end of a running period (a stop or delete).
type daytonaEvent struct {
	at    time.Time
	reset bool
}

func (h *harness) clock(reset bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.daytona = append(h.daytona, daytonaEvent{h.env.Now(), reset})
}

// assertBackstopNeverFired checks that while the sandbox ran, Daytona's clock
// was reset before its backstop (AutoStop rounded up to minutes, plus one)
// could stop it.
func (h *harness) assertBackstopNeverFired(cfg entity.Config) {
	h.t.Helper()
	backstop := cfg.AutoStop.Round(time.Minute) + time.Minute
	var last time.Time
	running := false
	for _, ev := range h.daytona {
		if running && ev.at.Sub(last) >= backstop {
			h.t.Errorf("Daytona's backstop fired at %s: its clock was last reset at %s", hhmm(last.Add(backstop).Sub(t0)), hhmm(last.Sub(t0)))
		}
		if ev.reset {
			last, running = ev.at, true
		} else {
			running = false
		}
	}
}

func (h *harness) record(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, s)
}

// at is the virtual time since t0 as hh:mm.
func (h *harness) at() string { return hhmm(h.env.Now().Sub(t0)) }

// hhmm formats an offset as hh:mm, or hh:mm:ss when it is not on a minute.
func hhmm(d time.Duration) string {
	s := fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60)
	if sec := int(d.Seconds()) % 60; sec != 0 {
		s += fmt.Sprintf(":%02d", sec)
	}
	return s
}

// ensureOutcome is what an ensure-running update answered.
type ensureOutcome struct {
	at       string
	rejected error
	err      error
	res      entity.EnsureResult
}

// ensure sends an ensure-running update after delay and stores the outcome.
func (h *harness) ensure(delay time.Duration, req entity.EnsureRequest, out *ensureOutcome) {
	h.env.RegisterDelayedCallback(func() {
		out.at = h.at()
		h.env.UpdateWorkflow(entity.UpdateEnsureRunning, req.RequestID, &testsuite.TestUpdateCallback{
			OnReject: func(err error) { out.rejected = err },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				out.err = err
				if r, ok := v.(entity.EnsureResult); ok {
					out.res = r
				}
			},
		}, req)
	}, delay)
}

// deleteAt sends a delete update after delay; done reports its completion.
func (h *harness) deleteAt(delay time.Duration, done *bool) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(entity.UpdateDelete, "del", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { h.t.Errorf("delete rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(_ any, err error) { *done = err == nil },
		}, entity.DeleteRequest{RequestID: "del"})
	}, delay)
}

func (h *harness) signal(delay time.Duration, name string, arg any) {
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(name, arg) }, delay)
}

// queryAt queries the state after delay.
func (h *harness) queryAt(delay time.Duration, out *entity.State) {
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(entity.QueryState)
		require.NoError(h.t, err)
		require.NoError(h.t, v.Get(out))
	}, delay)
}

func (h *harness) runThread(cfg entity.Config) {
	h.env.ExecuteWorkflow(entity.ThreadWorkflowName, entity.Input{Kind: entity.KindThread, UserID: "u1", ThreadID: "t1", Config: cfg})
}

func (h *harness) causes() []string {
	var out []string
	for _, ev := range h.ledger {
		out = append(out, ev.Event+"/"+ev.Cause)
	}
	return out
}

// canceledAt lists the would-be fire times (hh:mm) of the main loop's
// canceled timers. The timers of waiting ensure-running requests (each
// entity.MaxEnsureWait long, cancelled when the request is answered) are left out.
func (h *harness) canceledAt() []string {
	var out []string
	for _, id := range h.timersCanceled {
		if h.timerLengths[id] == entity.MaxEnsureWait {
			continue
		}
		out = append(out, hhmm(h.timersStarted[id].Sub(t0)))
	}
	return out
}

func decodeContinueAsNew(t *testing.T, err error) entity.Input {
	t.Helper()
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, err, &can)
	var in entity.Input
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
	return in
}
