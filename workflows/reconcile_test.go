package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/workflows"
)

func TestReconcileWorkflowAppliesTheDefaultGrace(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.ReconcileWorkflow, workflow.RegisterOptions{Name: workflows.ReconcileWorkflowName})
	a := &activities.Activities{}
	a.Register(env)
	var got activities.ReconcileInput
	env.OnActivity(activities.NameReconcileSandboxes, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReconcileInput) (activities.ReconcileResult, error) {
			got = in
			return activities.ReconcileResult{Checked: 3, Deleted: []string{"sbx-9"}}, nil
		})
	env.ExecuteWorkflow(workflows.ReconcileWorkflowName, workflows.ReconcileWorkflowInput{})
	require.NoError(t, env.GetWorkflowError())
	var res activities.ReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, []string{"sbx-9"}, res.Deleted)
	assert.Equal(t, workflows.DefaultReconcileGrace, got.GracePeriod)
}

func TestEnsureReconcileScheduleIsIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _ := testenv.Temporal(t)
	require.NoError(t, workflows.EnsureReconcileSchedule(ctx, c, "tq-a", 10*time.Minute, 0))
	require.NoError(t, workflows.EnsureReconcileSchedule(ctx, c, "tq-b", 5*time.Minute, 90*time.Second), "a second start updates the schedule")

	desc, err := c.ScheduleClient().GetHandle(ctx, workflows.ReconcileScheduleID).Describe(ctx)
	require.NoError(t, err)
	require.Len(t, desc.Schedule.Spec.Intervals, 1)
	assert.Equal(t, 5*time.Minute, desc.Schedule.Spec.Intervals[0].Every)
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	assert.Equal(t, "tq-b", action.TaskQueue)
	assert.Equal(t, workflows.ReconcileWorkflowName, action.Workflow)
	require.Len(t, action.Args, 1)
	var in workflows.ReconcileWorkflowInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(action.Args[0].(*commonpb.Payload), &in))
	assert.Equal(t, 90*time.Second, in.GracePeriod, "the schedule carries THREADBOX_RECONCILE_GRACE")

	assert.Error(t, workflows.EnsureReconcileSchedule(ctx, c, "tq", 0, 0))
}
