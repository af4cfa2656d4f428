package api

import (
	"context"
	"errors"
	"time"

	"github.com/threadbox/threadbox/entity"

	"github.com/threadbox/threadbox/daytona"
)

// useOptions describe one use of an entity's sandbox.
type useOptions struct {
	// Need is how long the sandbox must surely stay up (a command's timeout).
	Need time.Duration
	// Guard runs before any Temporal call (see sandboxClient.Ensure).
	Guard func(context.Context) error
	// Replayable reports whether the use may run again after it failed (a
	// streamed request body that was partly consumed cannot). nil means yes.
	Replayable func() bool
}

// Use runs fn against the entity's running sandbox. If fn fails because the
// sandbox was stopped or deleted behind the cache (a stale answer, or
// Daytona's own backstop acted), the cache entry is dropped, the sandbox is
// ensured again and fn is retried once. The use is reported when fn returns
// and a lease taken for it is released.
func (c *sandboxClient) Use(ctx context.Context, ref entity.Ref, o useOptions, fn func(context.Context, *ensured) error) error {
	for attempt := 0; ; attempt++ {
		sb, err := c.Ensure(ctx, ref, o.Need, o.Guard)
		if err != nil {
			return err
		}
		stop := func() {}
		if sb.LeaseID == "" {
			// A use that outlives what was ensured (a slow client on a
			// streamed body) still never sees the sandbox stop under it.
			stop = c.Hold(sb)
		}
		err = fn(ctx, sb)
		stop()
		c.Done(sb)
		if err == nil || attempt > 0 || (o.Replayable != nil && !o.Replayable()) || !c.gone(ctx, sb, err) {
			return err
		}
		c.log.InfoContext(ctx, "sandbox gone behind the cache; ensuring it again",
			"workflow_id", ref.WorkflowID(), "sandbox_id", sb.Result.SandboxID, "cached", sb.Cached, "err", err)
		c.Suspect(ref, sb.Result.SandboxID)
	}
}

// gone reports whether a toolbox failure means the sandbox is not running:
// the toolbox answers 404 for a missing sandbox and 400 for a stopped one,
// which are also its answers for a missing file or a bad request, so the
// control plane is asked (only on this error path).
func (c *sandboxClient) gone(ctx context.Context, sb *ensured, err error) bool {
	var de *daytona.Error
	if !errors.As(err, &de) {
		return false
	}
	if !errors.Is(err, daytona.ErrNotFound) && !errors.Is(err, daytona.ErrBadRequest) &&
		!errors.Is(err, daytona.ErrInvalidState) && !errors.Is(err, daytona.ErrUnavailable) {
		return false
	}
	if ctx.Err() != nil {
		return false
	}
	got, gerr := c.opts.Gateway.GetSandbox(ctx, sb.Result.SandboxID)
	if gerr != nil {
		return errors.Is(gerr, daytona.ErrNotFound)
	}
	return got.State != daytona.StateStarted
}
