package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeatEvery is how often activities heartbeat while they wait on
// Daytona, at most: a third of the activity's heartbeat timeout when that is
// shorter (see keepAlive).
const heartbeatEvery = 10 * time.Second

// keepAlive heartbeats (with details) now, then every heartbeatEvery or a
// third of the activity's heartbeat timeout, whichever is shorter, until
// stop is called: a long gateway call (a create or delete waiting for
// Daytona, a snapshot, a dependency install) keeps the activity alive,
// Temporal notices a dead worker within the heartbeat timeout, and a
// cancellation reaches the call. Outside an activity (tests calling methods
// directly) it does nothing.
func keepAlive(ctx context.Context, details ...any) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	every := heartbeatEvery
	if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 && hb/3 < every {
		every = hb / 3
	}
	activity.RecordHeartbeat(ctx, details...)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, details...)
			}
		}
	}()
	return func() { close(done) }
}

// heartbeating runs fn under keepAlive.
func heartbeating(ctx context.Context, fn func(ctx context.Context) error) error {
	stop := keepAlive(ctx)
	defer stop()
	return fn(ctx)
}
