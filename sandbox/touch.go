package sandbox

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/threadbox/threadbox/entity"
)

// done reports the end of a use: a touch (the idle timer counts from the
// end of a command) and, if the use held a lease, its release, sent in the
// background so the response is not delayed.
func (c *Client) done(sb *Sandbox) {
	now := c.opts.Now()
	if sb.leaseID == "" {
		c.touch(sb.Ref, now)
		return
	}
	c.goBackground(func() {
		ctx, cancel := context.WithTimeout(c.bg, releaseTimeout)
		defer cancel()
		if err := c.releaseLease(ctx, sb.Ref, sb.leaseID, now); err != nil && c.bg.Err() == nil {
			// The lease expires on its own; this only keeps the sandbox up longer.
			c.log.WarnContext(ctx, "release of a use's lease failed", "workflow_id", sb.Ref.WorkflowID(), "lease_id", sb.leaseID, "err", err)
		}
	})
}

// touch reports a use at `at`, debounced: at most one signal in flight and
// one per touchEvery per workflow, with the latest use always delivered
// (trailing edge). Only cached entities are touched: a use that went through
// ensure-running was reported by it.
func (c *Client) touch(ref entity.Ref, at time.Time) {
	id := ref.WorkflowID()
	c.mu.Lock()
	e := c.entries[id]
	if e == nil || !e.valid || c.closed {
		c.mu.Unlock()
		return
	}
	if at.After(e.pending) {
		e.pending = at
	}
	if e.sending {
		c.mu.Unlock()
		return
	}
	e.sending = true
	c.wg.Add(1)
	c.mu.Unlock()
	go c.touchLoop(id, e)
}

func (c *Client) touchLoop(id string, e *entry) {
	defer c.wg.Done()
	every := c.touchEvery(e.ref.Kind)
	autoStop := c.config(e.ref.Kind).AutoStop
	margin := c.margin(e.ref.Kind)
	for {
		c.mu.Lock()
		wait := e.lastSent.Add(every).Sub(c.opts.Now())
		c.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.bg.Done():
				t.Stop()
				c.mu.Lock()
				e.sending = false
				c.mu.Unlock()
				return
			}
		}
		c.mu.Lock()
		at := e.pending
		if at.IsZero() {
			e.sending = false
			c.mu.Unlock()
			return
		}
		e.pending = time.Time{}
		c.mu.Unlock()

		ctx, cancel := context.WithTimeout(c.bg, 10*time.Second)
		err := c.opts.Temporal.SignalWorkflow(ctx, id, "", entity.SignalTouch, entity.TouchSignal{At: at})
		cancel()
		delivered := c.opts.Now()

		c.mu.Lock()
		e.lastSent = delivered
		switch {
		case err == nil:
			// The workflow got the touch while it could not yet have stopped
			// the sandbox, so its idle deadline is now at least at+AutoStop.
			if e.valid && delivered.Add(margin).Before(e.horizon) {
				if h := at.Add(autoStop); h.After(e.horizon) {
					e.horizon = h
				}
			}
		case isWorkflowNotFound(err):
			e.valid = false // the entity ended: the next use starts it again
		case c.bg.Err() != nil:
		default:
			// Temporal is unreachable (or refused): keep the use pending, so
			// it is sent again after touchEvery and the idle deadline still
			// counts from it once Temporal is back. Dropped, the sandbox
			// would stop an interval after an earlier use.
			if at.After(e.pending) {
				e.pending = at
			}
			c.log.Warn("touch signal failed; sent again later", "workflow_id", id, "err", err, "retry_in", every)
		}
		c.mu.Unlock()
	}
}

// isWorkflowNotFound reports Temporal's "no such (running) workflow".
func isWorkflowNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}
