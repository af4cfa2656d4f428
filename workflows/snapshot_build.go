package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
)

// SnapshotDaytonaName is the Daytona name of a snapshot version: versioned
// (Daytona snapshots are immutable and have no alias) and suffixed with the
// build's run id, so a rebuild of a number whose first attempt failed, or
// another deployment sharing the Daytona organisation, never collides. It is
// deterministic within a run, which is what lets a resumed build find its
// own snapshot.
func SnapshotDaytonaName(version int, runID string) string {
	return fmt.Sprintf("threadbox-skills-v%d-%s", version, shortRun(runID))
}

func shortRun(runID string) string {
	if len(runID) > 8 {
		return runID[:8]
	}
	return runID
}

// MaxSnapshotBuild bounds the baking of one snapshot version, all attempts
// included.
const MaxSnapshotBuild = 6 * time.Hour

// SnapshotBuildWorkflow (id snapshot-build:<version>) builds one version: it
// records the version with its skill set, bakes base snapshot + skills into a
// Daytona snapshot through a scratch sandbox (always deleted), waits for it
// to be active, and promotes it — only if the active pointer is still where
// it was when the build started; otherwise the version stays ready but
// inactive and the audit trail says why. A failure marks the version failed
// and leaves the active snapshot untouched.
func SnapshotBuildWorkflow(ctx workflow.Context, in SnapshotBuildInput) (SnapshotBuildResult, error) {
	st := BuildStatus{Phase: "preparing", Version: in.Version}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (BuildStatus, error) { return st, nil }); err != nil {
		return SnapshotBuildResult{}, err
	}
	info := workflow.GetInfo(ctx)
	name := SnapshotDaytonaName(in.Version, info.WorkflowExecution.RunID)
	key := fmt.Sprintf("build-v%d-%s", in.Version, shortRun(info.WorkflowExecution.RunID))
	st.DaytonaName = name

	var start activities.StartSnapshotBuildResult
	actx := workflow.WithActivityOptions(ctx, quickOptions("record snapshot version"))
	if err := workflow.ExecuteActivity(actx, activities.NameStartSnapshotBuild, activities.StartSnapshotBuildInput{
		Version: in.Version, DaytonaName: name, Actor: in.Request.Actor, WorkflowID: info.WorkflowExecution.ID,
	}).Get(ctx, &start); err != nil {
		st.Phase, st.Error = "failed", err.Error()
		return SnapshotBuildResult{}, err
	}
	st.SnapshotID, st.Skills, st.Phase = start.SnapshotID, start.SkillNames, "building"
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("building %s with %v", name, start.SkillNames))

	cleanup := scratchCleanup(ctx, key, "delete build sandbox")
	defer cleanup()
	fail := func(err error) (SnapshotBuildResult, error) {
		st.Phase, st.Error = "failed", rootMessage(err)
		cleanup()
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		dctx = workflow.WithActivityOptions(dctx, quickOptions("mark version failed"))
		_ = workflow.ExecuteActivity(dctx, activities.NameFailSnapshotBuild, activities.FailSnapshotBuildInput{SnapshotID: start.SnapshotID, Error: rootMessage(err)}).Get(dctx, nil)
		return SnapshotBuildResult{}, err
	}

	bctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		// All attempts together: the build then ends here, through fail
		// (version marked failed, scratch sandbox deleted), however slowly
		// its attempts fail. The workflow has no run timeout of its own,
		// which would end it with the version left "building".
		ScheduleToCloseTimeout: MaxSnapshotBuild,
		HeartbeatTimeout:       30 * time.Second,
		// On cancellation, wait until the activity has stopped before the
		// cleanup deletes the build sandbox (see SkillValidationWorkflow).
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5,
		},
		Summary: "bake skills into " + name,
	})
	var img activities.BuildSnapshotImageResult
	if err := workflow.ExecuteActivity(bctx, activities.NameBuildSnapshotImage, activities.BuildSnapshotImageInput{
		SnapshotID: start.SnapshotID, DaytonaName: name, ScratchKey: key, SkillIDs: start.SkillIDs,
	}).Get(ctx, &img); err != nil {
		return fail(err)
	}
	cleanup()

	st.Phase = "promoting"
	var prom activities.PromoteSnapshotResult
	pctx := workflow.WithActivityOptions(ctx, quickOptions("promote "+name))
	if err := workflow.ExecuteActivity(pctx, activities.NamePromoteSnapshot, activities.PromoteSnapshotInput{
		SnapshotID: start.SnapshotID, DaytonaSnapshotID: img.DaytonaSnapshotID, ExpectedFromID: start.BuiltFromID,
		Actor: in.Request.Actor, Reason: in.Request.Reason, WorkflowID: info.WorkflowExecution.ID,
	}).Get(ctx, &prom); err != nil {
		return fail(err)
	}
	st.Phase, st.Activated, st.Reason = "done", prom.Activated, prom.Reason
	return SnapshotBuildResult{
		SnapshotID: start.SnapshotID, Version: start.Version, DaytonaName: name, Skills: start.SkillNames,
		Activated: prom.Activated, Reason: prom.Reason,
	}, nil
}
