package api

import (
	"context"
	"time"

	"github.com/threadbox/threadbox/entity"

	"github.com/google/uuid"
)

// horizonOf is the cached moment before which the workflow will not stop
// ref's sandbox (zero when nothing is cached).
func (c *sandboxClient) horizonOf(ref entity.Ref) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[ref.WorkflowID()]; e != nil && e.valid {
		return e.horizon
	}
	return time.Time{}
}

// Hold keeps sb's sandbox running for as long as a use of unknown length
// lasts (a download, an upload, a copy), without a Temporal round trip for
// the common case of a use that ends inside the window the cache already
// guarantees: only if the use is still going shortly before that window
// closes does it take a lease, renewed while the use goes on. The returned
// stop ends the hold at once; a lease it took is released in the background.
func (c *sandboxClient) Hold(sb *ensured) (stop func()) {
	ref := sb.ref
	margin := c.margin(ref.Kind)
	ttl := max(c.config(ref.Kind).AutoStop, 4*margin)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return func() {}
	}
	c.wg.Add(1)
	c.mu.Unlock()

	ctx, cancel := context.WithCancel(c.bg)
	go func() {
		defer c.wg.Done()
		leaseID := ""
		until := sb.Result.RunningUntil
		if h := c.horizonOf(ref); h.After(until) {
			until = h
		}
		for {
			wait := time.Until(until.Add(-margin))
			select {
			case <-ctx.Done():
				if leaseID != "" {
					rctx, rcancel := context.WithTimeout(c.bg, 30*time.Second)
					if err := c.ReleaseLease(rctx, ref, leaseID); err != nil && c.bg.Err() == nil {
						// The lease expires on its own; this only keeps the sandbox up longer.
						c.log.WarnContext(rctx, "release of a hold's lease failed", "workflow_id", ref.WorkflowID(), "err", err)
					}
					rcancel()
				}
				return
			case <-time.After(wait):
			}
			if h := c.horizonOf(ref); leaseID == "" && h.After(until) {
				until = h // other uses moved the window: nothing to do yet
				continue
			}
			if leaseID == "" {
				leaseID = "hold-" + uuid.NewString()
			}
			lctx, lcancel := context.WithTimeout(ctx, margin)
			_, err := c.EnsureLease(lctx, ref, leaseID, ttl)
			lcancel()
			if err != nil {
				if ctx.Err() == nil {
					c.log.WarnContext(ctx, "taking a lease for a long use failed; retrying", "workflow_id", ref.WorkflowID(), "err", err)
					until = time.Now().Add(margin + margin/4) // retry soon
				}
				continue
			}
			until = time.Now().Add(ttl)
		}
	}()
	return cancel
}
