package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// ReconcileScheduleID is the id of the reconciler's Temporal schedule; runs
// get workflow ids ReconcileScheduleID-<time>.
const ReconcileScheduleID = "threadbox-reconciler"

// EnsureReconcileSchedule creates the reconciler's schedule, or updates it to
// the given interval, grace period (THREADBOX_RECONCILE_GRACE; 0 is
// DefaultReconcileGrace) and task queue when it exists, so every worker start
// can call it. Overlapping runs are skipped and missed runs are not caught up.
func EnsureReconcileSchedule(ctx context.Context, c client.Client, taskQueue string, every, grace time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("reconcile schedule: interval must be positive, got %s", every)
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{
		ID:        ReconcileScheduleID,
		Workflow:  ReconcileWorkflowName,
		Args:      []any{ReconcileWorkflowInput{GracePeriod: grace}},
		TaskQueue: taskQueue,
	}
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            ReconcileScheduleID,
		Spec:          spec,
		Action:        action,
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: time.Minute,
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("creating reconcile schedule: %w", err)
	}
	h := c.ScheduleClient().GetHandle(ctx, ReconcileScheduleID)
	err = h.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec = &spec
			s.Action = action
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
			s.Policy.CatchupWindow = time.Minute
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("updating reconcile schedule: %w", err)
	}
	return nil
}
