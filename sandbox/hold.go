package sandbox

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/threadbox/threadbox/entity"
)

// releaseTimeout bounds releasing a lease in the background.
const releaseTimeout = 30 * time.Second

// after is a timer firing at t on the client's clock.
func (c *Client) after(t time.Time) *time.Timer { return time.NewTimer(t.Sub(c.opts.Now())) }

// hold keeps sb's sandbox running for as long as a use of unknown length
// lasts (a download, an upload, a copy, a long listing), without a Temporal
// round trip for the common case of a use that ends inside the window the
// cache already guarantees: only if the use is still going shortly before
// that window closes does it take a lease, renewed while the use goes on.
// The returned stop ends the hold at once; a lease it took is released in
// the background.
func (c *Client) hold(sb *Sandbox) (stop func()) {
	ref := sb.Ref
	margin := c.margin(ref.Kind)
	ttl := max(c.config(ref.Kind).AutoStop, 4*margin)
	ctx, cancel := context.WithCancel(c.bg)
	started := c.goBackground(func() {
		leaseID := ""
		until := sb.Result.RunningUntil
		if h := c.horizonOf(ref); h.After(until) {
			until = h
		}
		for {
			timer := c.after(until.Add(-margin))
			select {
			case <-ctx.Done():
				timer.Stop()
				if leaseID != "" {
					rctx, rcancel := context.WithTimeout(c.bg, releaseTimeout)
					if err := c.releaseLease(rctx, ref, leaseID, c.opts.Now()); err != nil && c.bg.Err() == nil {
						// The lease expires on its own; this only keeps the sandbox up longer.
						c.log.WarnContext(rctx, "release of a hold's lease failed", "workflow_id", ref.WorkflowID(), "err", err)
					}
					rcancel()
				}
				return
			case <-timer.C:
			}
			if h := c.horizonOf(ref); leaseID == "" && h.After(until) {
				until = h // other uses moved the window: nothing to do yet
				continue
			}
			if leaseID == "" {
				leaseID = "hold-" + uuid.NewString()
			}
			lctx, lcancel := context.WithTimeout(ctx, margin)
			_, _, _, err := c.update(lctx, ref, &entity.LeaseRequest{ID: leaseID, TTL: ttl})
			lcancel()
			if err != nil {
				if ctx.Err() == nil {
					c.log.WarnContext(ctx, "taking a lease for a long use failed; retrying", "workflow_id", ref.WorkflowID(), "err", err)
					until = c.opts.Now().Add(margin + margin/4) // retry soon
				}
				continue
			}
			until = c.opts.Now().Add(ttl)
		}
	})
	if !started {
		cancel()
	}
	return cancel
}
