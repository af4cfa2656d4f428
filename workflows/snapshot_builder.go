package workflows

import (
	"fmt"
	"strconv"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/entity"
)

// builderMaxRuns bounds the history of one builder run; it continues as new
// afterwards (or earlier, when the server suggests it).
const builderMaxRuns = 50

// SnapshotBuilderWorkflow (id SnapshotBuilderWorkflowID) serialises snapshot
// builds: requests arrive by signal, and each one becomes a child
// SnapshotBuildWorkflow, run to completion before the next starts. Each build
// reads the skill set when it starts, so it includes every skill validated
// before it, and two concurrent publishes produce two versions in order
// instead of racing for the pointer. It completes when its queue is empty;
// the next request starts it again.
//
// Cancelling it stops it: the running build is cancelled (its own cleanup
// marks the version failed), no other build starts, and the builder ends
// cancelled with the requests it did not build as the cancellation's details
// (and one log line each). Nothing is lost for good: the next build request
// starts the builder again, and a build takes every valid skill.
func SnapshotBuilderWorkflow(ctx workflow.Context, in BuilderInput) (BuilderStatus, error) {
	queue := append([]BuildRequest(nil), in.Pending...)
	st := BuilderStatus{Completed: in.Completed}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (BuilderStatus, error) {
		s := st
		s.Queued = len(queue)
		return s, nil
	}); err != nil {
		return st, err
	}
	ch := workflow.GetSignalChannel(ctx, SignalBuildRequest)
	drain := func() {
		for {
			var req BuildRequest
			if !ch.ReceiveAsync(&req) {
				return
			}
			queue = append(queue, req)
		}
	}
	cancelled := func(current ...BuildRequest) (BuilderStatus, error) {
		drain()
		dropped := append(current, queue...)
		for _, r := range dropped {
			workflow.GetLogger(ctx).Error("snapshot build request dropped: the builder was cancelled",
				"actor", r.Actor, "reason", r.Reason, "skill", r.SkillID, "requested_at", r.RequestedAt)
		}
		st.CurrentVersion = 0
		return st, temporal.NewCanceledError(dropped)
	}
	runs := 0
	for {
		drain()
		if ctx.Err() != nil {
			return cancelled()
		}
		if len(queue) == 0 {
			return st, nil
		}
		if runs >= builderMaxRuns || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return st, workflow.NewContinueAsNewError(ctx, SnapshotBuilderWorkflowName, BuilderInput{Pending: queue, Completed: st.Completed})
		}
		req := queue[0]
		queue = queue[1:]
		runs++
		err := runBuild(ctx, &st, req)
		if ctx.Err() != nil {
			return cancelled(req)
		}
		if err != nil {
			// A failed build is recorded by the build itself (state failed,
			// pointer untouched); the queue goes on.
			workflow.GetLogger(ctx).Error("snapshot build failed", "version", st.CurrentVersion, "err", err)
		}
		st.CurrentVersion = 0
		st.Completed++
	}
}

// runBuild allocates the next version number and runs its build as a child.
func runBuild(ctx workflow.Context, st *BuilderStatus, req BuildRequest) error {
	actx := workflow.WithActivityOptions(ctx, quickOptions("next snapshot version"))
	var version int
	if err := workflow.ExecuteActivity(actx, activities.NameNextSnapshotVersion).Get(ctx, &version); err != nil {
		return err
	}
	st.CurrentVersion = version
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            SnapshotBuildWorkflowID(version),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		StaticSummary:         fmt.Sprintf("snapshot build v%d: %s", version, req.Reason),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			entity.AttrUserID.ValueSet(req.Actor),
			AttrSnapshotVersion.ValueSet(strconv.Itoa(version)),
		),
		// No run timeout: the build bounds its own work (MaxSnapshotBuild)
		// and always ends through its cleanup.
	})
	var res SnapshotBuildResult
	return workflow.ExecuteChildWorkflow(cctx, SnapshotBuildWorkflowName, SnapshotBuildInput{Version: version, Request: req}).Get(ctx, &res)
}
