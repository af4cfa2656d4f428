// Package worker runs threadbox's Temporal worker: every workflow and activity
// on one task queue. Workers are stateless; run as many as load needs.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/workflows"
)

// Options tune the worker; zero values take the SDK defaults.
type Options struct {
	TaskQueue string
	// StopTimeout is how long Stop lets running activities finish before
	// it cancels them (they are then retried on another worker, after
	// their heartbeat timeout); 0: the SDK's default (none).
	StopTimeout time.Duration
}

// stickyScheduleToStart is how long a workflow task waits for the worker that
// has the workflow cached before any worker takes it. The SDK's 5 s made
// every idle stop or delete whose workflow was cached on a killed worker at
// least 5 s late (the fault suite, docs/RELIABILITY.md); a live worker keeps
// polls outstanding, so it picks a sticky task up in far less than this.
const stickyScheduleToStart = 2 * time.Second

// maxHeartbeatThrottle caps how long the SDK holds back an activity's
// heartbeats. Its default, 0.8 × the heartbeat timeout, would send a
// lifecycle activity's (5 s timeout) every 4 s after the previous call
// returned, about a second from the timeout: a GC pause or a slow frontend
// would then time out a live attempt and start a second one beside it.
const maxHeartbeatThrottle = time.Second

// New builds a worker with every workflow and activity registered.
func New(c client.Client, opts Options, acts *activities.Activities) sdkworker.Worker {
	if acts.Temporal == nil {
		acts.Temporal = c // the orphan reconciler asks entity workflows what they track
	}
	w := sdkworker.New(c, opts.TaskQueue, sdkworker.Options{
		WorkerStopTimeout:            opts.StopTimeout,
		StickyScheduleToStartTimeout: stickyScheduleToStart,
		MaxHeartbeatThrottleInterval: maxHeartbeatThrottle,
	})
	workflows.Register(w)
	acts.Register(w)
	return w
}

// Run runs the worker until ctx is done.
func Run(ctx context.Context, w sdkworker.Worker, log *slog.Logger) error {
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting worker: %w", err)
	}
	log.InfoContext(ctx, "worker started")
	<-ctx.Done()
	w.Stop()
	return nil
}
