package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
)

// skillHarness runs the skills workflows under the time-skipping test suite
// with their activities mocked, recording the calls in order.
type skillHarness struct {
	env   *testsuite.TestWorkflowEnvironment
	mu    sync.Mutex
	calls []string
}

func (h *skillHarness) record(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, fmt.Sprintf(format, args...))
}

func (h *skillHarness) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

func newSkillHarness(t *testing.T) *skillHarness {
	t.Helper()
	h := &skillHarness{env: newTestEnvironment()}
	registerSkills(h.env)
	(&activities.Activities{}).Register(h.env)
	h.env.OnActivity(activities.NameDeleteScratchSandbox, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ScratchSandboxInput) error {
			h.record("delete %s", in.ScratchKey)
			return nil
		})
	h.env.OnActivity(activities.NameFinishSkillValidation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FinishSkillValidationInput) error {
			h.record("finish passed=%v log=%q", in.Passed, in.Log)
			return nil
		})
	return h
}

var skillIn = SkillValidationInput{SkillID: "11111111-1111-1111-1111-111111111111", Name: "pdf", Version: 2, Actor: "admin-1"}

func TestSkillValidationValidQueuesBuild(t *testing.T) {
	h := newSkillHarness(t)
	h.env.OnActivity(activities.NameValidateSkill, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ValidateSkillInput) (activities.ValidateSkillResult, error) {
			h.record("validate %s", in.ScratchKey)
			return activities.ValidateSkillResult{Passed: true, Log: "ok\n", SandboxID: "sb-1"}, nil
		})
	var req BuildRequest
	h.env.OnSignalExternalWorkflow(mock.Anything, SnapshotBuilderWorkflowID, "", SignalBuildRequest, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error {
			req = arg.(BuildRequest)
			h.record("signal builder")
			return nil
		})
	h.env.ExecuteWorkflow(SkillValidationWorkflow, skillIn)
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, []string{"validate skill-pdf-v2", "delete skill-pdf-v2", `finish passed=true log="ok\n"`, "signal builder"}, h.got())
	require.Equal(t, "admin-1", req.Actor)
	require.Equal(t, skillIn.SkillID, req.SkillID)
	var st SkillValidationStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, "valid", st.Result)
}

func TestSkillValidationFailingCheckIsInvalidAndBuildsNothing(t *testing.T) {
	h := newSkillHarness(t)
	h.env.OnActivity(activities.NameValidateSkill, mock.Anything, mock.Anything).Return(
		activities.ValidateSkillResult{Passed: false, Log: "check failed with exit code 3\n"}, nil)
	h.env.ExecuteWorkflow(SkillValidationWorkflow, skillIn)
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, []string{"delete skill-pdf-v2", `finish passed=false log="check failed with exit code 3\n"`}, h.got())
}

func TestSkillValidationDaytonaErrorStillDeletesSandbox(t *testing.T) {
	h := newSkillHarness(t)
	h.env.OnActivity(activities.NameValidateSkill, mock.Anything, mock.Anything).Return(
		activities.ValidateSkillResult{}, temporal.NewNonRetryableApplicationError("create scratch sandbox: daytona unavailable", "DaytonaUnavailable", nil))
	h.env.ExecuteWorkflow(SkillValidationWorkflow, skillIn)
	require.NoError(t, h.env.GetWorkflowError())
	calls := h.got()
	require.Len(t, calls, 2)
	require.Equal(t, "delete skill-pdf-v2", calls[0])
	require.Contains(t, calls[1], "finish passed=false")
	require.Contains(t, calls[1], "daytona unavailable")
}

func TestSkillValidationCancelledStillDeletesSandboxAndRecordsVerdict(t *testing.T) {
	h := newSkillHarness(t)
	h.env.OnActivity(activities.NameValidateSkill, mock.Anything, mock.Anything).After(10*time.Minute).Return(
		activities.ValidateSkillResult{Passed: true}, nil)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Minute)
	h.env.ExecuteWorkflow(SkillValidationWorkflow, skillIn)
	err := h.env.GetWorkflowError()
	require.Error(t, err)
	require.True(t, temporal.IsCanceledError(err) || errors.Is(err, workflow.ErrCanceled), "err = %v", err)
	calls := h.got()
	require.Len(t, calls, 2, "%v", calls)
	require.Equal(t, "delete skill-pdf-v2", calls[0])
	require.Contains(t, calls[1], "finish passed=false")
	require.Contains(t, calls[1], "did not complete")
}

// buildMocks mocks the build activities with an in-memory pointer, so the
// promotion rule can be observed.
func (h *skillHarness) buildMocks(buildTime time.Duration, buildErr error) {
	next := 0
	h.env.OnActivity(activities.NameNextSnapshotVersion, mock.Anything).Return(func(context.Context) (int, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		next++
		return next, nil
	})
	h.env.OnActivity(activities.NameStartSnapshotBuild, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StartSnapshotBuildInput) (activities.StartSnapshotBuildResult, error) {
			h.record("start v%d at %s", in.Version, h.env.Now().Format("15:04"))
			return activities.StartSnapshotBuildResult{SnapshotID: int64(100 + in.Version), Version: in.Version, DaytonaName: in.DaytonaName}, nil
		})
	h.env.OnActivity(activities.NameBuildSnapshotImage, mock.Anything, mock.Anything).After(buildTime).Return(
		func(_ context.Context, in activities.BuildSnapshotImageInput) (activities.BuildSnapshotImageResult, error) {
			if !strings.HasPrefix(in.DaytonaName, fmt.Sprintf("threadbox-skills-v%d-", in.SnapshotID-100)) {
				return activities.BuildSnapshotImageResult{}, fmt.Errorf("unexpected name %s", in.DaytonaName)
			}
			return activities.BuildSnapshotImageResult{DaytonaSnapshotID: "d-" + in.DaytonaName}, buildErr
		})
	h.env.OnActivity(activities.NamePromoteSnapshot, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PromoteSnapshotInput) (activities.PromoteSnapshotResult, error) {
			h.record("promote %d at %s", in.SnapshotID, h.env.Now().Format("15:04"))
			return activities.PromoteSnapshotResult{Activated: true}, nil
		})
	h.env.OnActivity(activities.NameFailSnapshotBuild, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FailSnapshotBuildInput) error {
			h.record("fail %d", in.SnapshotID)
			return nil
		})
}

func TestSnapshotBuildFailureMarksFailedAndNeverPromotes(t *testing.T) {
	h := newSkillHarness(t)
	h.buildMocks(time.Minute, temporal.NewNonRetryableApplicationError("snapshot build_failed", "DaytonaInvalidState", nil))
	h.env.ExecuteWorkflow(SnapshotBuildWorkflow, SnapshotBuildInput{Version: 3, Request: BuildRequest{Actor: "a"}})
	require.Error(t, h.env.GetWorkflowError())
	calls := h.got()
	require.Len(t, calls, 3, "%v", calls)
	require.Contains(t, calls[0], "start v3")
	require.True(t, strings.HasPrefix(calls[1], "delete build-v3-"), calls[1])
	require.Equal(t, "fail 103", calls[2])
}

// TestBuilderRunsBuildsOneAtATimeInOrder: two queued requests and one that
// arrives during the first build give three versions, each started only
// after the previous one was promoted.
func TestBuilderRunsBuildsOneAtATimeInOrder(t *testing.T) {
	h := newSkillHarness(t)
	h.env.SetStartTime(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	h.buildMocks(10*time.Minute, nil)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalBuildRequest, BuildRequest{Actor: "admin-3", Reason: "third"})
	}, 5*time.Minute)
	h.env.ExecuteWorkflow(SnapshotBuilderWorkflow, BuilderInput{Pending: []BuildRequest{{Actor: "admin-1"}, {Actor: "admin-2"}}})
	require.NoError(t, h.env.GetWorkflowError())
	var starts, promotes []string
	var order []string
	for _, c := range h.got() {
		switch {
		case strings.HasPrefix(c, "start"):
			starts = append(starts, c)
			order = append(order, "start")
		case strings.HasPrefix(c, "promote"):
			promotes = append(promotes, c)
			order = append(order, "promote")
		}
	}
	require.Equal(t, []string{"start v1 at 10:00", "start v2 at 10:10", "start v3 at 10:20"}, starts)
	require.Equal(t, []string{"promote 101 at 10:10", "promote 102 at 10:20", "promote 103 at 10:30"}, promotes)
	require.Equal(t, []string{"start", "promote", "start", "promote", "start", "promote"}, order)
	var st BuilderStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, 3, st.Completed)
}

func TestActivationEnsuresSnapshotThenSwitches(t *testing.T) {
	h := newSkillHarness(t)
	h.env.OnActivity(activities.NameEnsureSnapshotUsable, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EnsureSnapshotUsableInput) error {
			h.record("ensure %d", in.SnapshotID)
			return nil
		})
	from := int64(7)
	h.env.OnActivity(activities.NameActivateSnapshot, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ActivateSnapshotInput) (activities.ActivateSnapshotResult, error) {
			h.record("activate %d by %s: %s", in.SnapshotID, in.Actor, in.Reason)
			return activities.ActivateSnapshotResult{FromID: &from}, nil
		})
	h.env.ExecuteWorkflow(SnapshotActivationWorkflow, ActivationInput{SnapshotID: 0, Actor: "root", Reason: "bad release"})
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, []string{"ensure 0", "activate 0 by root: bad release"}, h.got())
	var st ActivationStatus
	require.NoError(t, h.env.GetWorkflowResult(&st))
	require.Equal(t, "done", st.Phase)
	require.Equal(t, int64(7), *st.FromID)
}

func TestActivationStopsWhenSnapshotUnusable(t *testing.T) {
	h := newSkillHarness(t)
	h.env.OnActivity(activities.NameEnsureSnapshotUsable, mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError("snapshot 4 is failed, not ready", "SnapshotNotReady", nil))
	h.env.ExecuteWorkflow(SnapshotActivationWorkflow, ActivationInput{SnapshotID: 4, Actor: "root"})
	require.Error(t, h.env.GetWorkflowError())
	require.Empty(t, h.got(), "the pointer must not move")
}

func TestWorkflowIDs(t *testing.T) {
	require.Equal(t, "skill:pdf:3", SkillWorkflowID("pdf", 3))
	require.Equal(t, "snapshot-build:12", SnapshotBuildWorkflowID(12))
	at := time.Date(2026, 3, 1, 10, 0, 0, 5, time.UTC)
	require.Equal(t, "snapshot-rollback:20260301T100000.000000005Z", SnapshotRollbackWorkflowID(at))
	require.Equal(t, "snapshot-activate:4:20260301T100000.000000005Z", SnapshotActivateWorkflowID(4, at))
	require.Equal(t, "threadbox-skills-v2-abcdef01", SnapshotDaytonaName(2, "abcdef01-2345"))
}

// TestSnapshotBuildThatOutlastsItsBoundStillCleansUp (issue 12, finding 8):
// a build whose attempts keep failing slowly must end inside the workflow —
// version marked failed, scratch sandbox deleted — not be killed by a run
// timeout that leaves the row "building" and the sandbox to Daytona.
func TestSnapshotBuildThatOutlastsItsBoundStillCleansUp(t *testing.T) {
	h := newSkillHarness(t)
	h.env.SetStartTime(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	h.buildMocks(90*time.Minute, temporal.NewApplicationError("snapshot build: Daytona 503", "DaytonaUnavailable"))
	h.env.ExecuteWorkflow(SnapshotBuilderWorkflow, BuilderInput{Pending: []BuildRequest{{Actor: "admin-1"}}})

	require.NoError(t, h.env.GetWorkflowError())
	calls := h.got()
	require.Len(t, calls, 3, "%v", calls)
	require.Equal(t, "start v1 at 10:00", calls[0])
	require.True(t, strings.HasPrefix(calls[1], "delete build-v1-"), calls[1])
	require.Equal(t, "fail 101", calls[2])
}

// TestCancellingTheBuilderReportsTheRequestsItDrops (issue 12, finding 8):
// cancelling the builder stops it — the running build is cancelled (and
// marked failed by its own workflow) — and the builder ends cancelled,
// naming the requests it did not build, instead of failing each queued
// request at once and completing as if all went well.
func TestCancellingTheBuilderReportsTheRequestsItDrops(t *testing.T) {
	h := newSkillHarness(t)
	h.env.SetStartTime(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	h.buildMocks(10*time.Minute, nil)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 5*time.Minute)
	h.env.ExecuteWorkflow(SnapshotBuilderWorkflow, BuilderInput{Pending: []BuildRequest{
		{Actor: "admin-1", Reason: "first"}, {Actor: "admin-2", Reason: "second"}, {Actor: "admin-3", Reason: "third"}}})

	err := h.env.GetWorkflowError()
	var canceled *temporal.CanceledError
	require.ErrorAs(t, err, &canceled, "the builder must end cancelled, not completed: %v", err)
	var dropped []BuildRequest
	require.NoError(t, canceled.Details(&dropped))
	var reasons []string
	for _, r := range dropped {
		reasons = append(reasons, r.Reason)
	}
	assert.Equal(t, []string{"first", "second", "third"}, reasons, "the cancelled build's request and the queued ones")
	calls := h.got()
	assert.Equal(t, 1, strings.Count(strings.Join(calls, "\n"), "start v"), "no build starts after the cancellation: %v", calls)
	assert.Contains(t, calls, "fail 101", "the cancelled build marks its version failed")
}
