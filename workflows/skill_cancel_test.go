package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/workflows"
)

// scratchLog records, in order, when the scratch-sandbox work ended and when
// the sandbox was deleted.
type scratchLog struct {
	mu     sync.Mutex
	events []string
}

func (l *scratchLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, s)
}

func (l *scratchLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// busyScratch stands for ValidateSkill / BuildSnapshotImage: it heartbeats,
// and once cancelled it still needs a moment to finish (a Daytona create in
// flight completes) before it returns.
func busyScratch(l *scratchLog, started chan<- struct{}) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		close(started)
		for {
			activity.RecordHeartbeat(ctx)
			select {
			case <-ctx.Done():
				time.Sleep(700 * time.Millisecond) // the create in flight lands
				l.add("scratch work ended")
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// TestScratchSandboxDeletedOnlyAfterTheCancelledWorkIsOver: cancelling a
// skill validation or a snapshot build must not delete the scratch sandbox
// while the activity that creates and uses it still runs (it would create
// the sandbox again after the delete, and nothing would ever remove it: the
// reconciler leaves scratch sandboxes to their workflows). On a real server
// the workflow waits for the activity to acknowledge the cancellation.
func TestScratchSandboxDeletedOnlyAfterTheCancelledWorkIsOver(t *testing.T) {
	c, _ := testenv.Temporal(t)
	for _, tc := range []struct {
		name, activity string
		start          func(ctx context.Context, opts client.StartWorkflowOptions) (client.WorkflowRun, error)
	}{
		{"skill validation", activities.NameValidateSkill, func(ctx context.Context, o client.StartWorkflowOptions) (client.WorkflowRun, error) {
			return c.ExecuteWorkflow(ctx, o, workflows.SkillValidationWorkflowName,
				workflows.SkillValidationInput{SkillID: uuid.NewString(), Name: "pdf", Version: 1, Actor: "admin"})
		}},
		{"snapshot build", activities.NameBuildSnapshotImage, func(ctx context.Context, o client.StartWorkflowOptions) (client.WorkflowRun, error) {
			return c.ExecuteWorkflow(ctx, o, workflows.SnapshotBuildWorkflowName,
				workflows.SnapshotBuildInput{Version: 1, Request: workflows.BuildRequest{Actor: "admin"}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			l := &scratchLog{}
			started := make(chan struct{})
			tq := "scratch-" + uuid.NewString()
			// Heartbeats (which carry the cancellation) are not throttled to
			// the 24 s the 30 s heartbeat timeout would allow.
			w := sdkworker.New(c, tq, sdkworker.Options{MaxHeartbeatThrottleInterval: 100 * time.Millisecond})
			workflows.Register(w)
			w.RegisterActivityWithOptions(busyScratch(l, started), activity.RegisterOptions{Name: tc.activity})
			w.RegisterActivityWithOptions(func(context.Context, activities.ScratchSandboxInput) error {
				l.add("scratch sandbox deleted")
				return nil
			}, activity.RegisterOptions{Name: activities.NameDeleteScratchSandbox})
			w.RegisterActivityWithOptions(func(context.Context, activities.FinishSkillValidationInput) error { return nil },
				activity.RegisterOptions{Name: activities.NameFinishSkillValidation})
			w.RegisterActivityWithOptions(func(_ context.Context, in activities.StartSnapshotBuildInput) (activities.StartSnapshotBuildResult, error) {
				return activities.StartSnapshotBuildResult{SnapshotID: 1, Version: in.Version, DaytonaName: in.DaytonaName}, nil
			}, activity.RegisterOptions{Name: activities.NameStartSnapshotBuild})
			w.RegisterActivityWithOptions(func(context.Context, activities.FailSnapshotBuildInput) error { return nil },
				activity.RegisterOptions{Name: activities.NameFailSnapshotBuild})
			require.NoError(t, w.Start())
			defer w.Stop()

			run, err := tc.start(ctx, client.StartWorkflowOptions{ID: "scratch-cancel-" + uuid.NewString(), TaskQueue: tq})
			require.NoError(t, err)
			select {
			case <-started:
			case <-ctx.Done():
				t.Fatal("the scratch activity never started")
			}
			require.NoError(t, c.CancelWorkflow(ctx, run.GetID(), run.GetRunID()))
			_ = run.Get(ctx, nil)
			require.Eventually(t, func() bool { return len(l.get()) == 2 }, 20*time.Second, 50*time.Millisecond, "%v", l.get())
			require.Equal(t, []string{"scratch work ended", "scratch sandbox deleted"}, l.get())
		})
	}
}
