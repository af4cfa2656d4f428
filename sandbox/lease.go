package sandbox

import (
	"context"
	"fmt"
	"time"

	"github.com/threadbox/threadbox/entity"
)

// Lease takes a client-requested lease of ttl inside ensure-running: the
// sandbox runs when it returns and is not auto-stopped before the lease
// expires or is released. It may start the sandbox, so it is admitted like
// any ensure that goes to the workflow (Options.Admit).
func (c *Client) Lease(ctx context.Context, ref entity.Ref, leaseID string, ttl time.Duration) (entity.EnsureResult, error) {
	if c.opts.Admit != nil {
		release, err := c.opts.Admit(ctx, ref)
		if err != nil {
			return entity.EnsureResult{}, err
		}
		defer release()
	}
	res, _, _, err := c.update(ctx, ref, &entity.LeaseRequest{ID: leaseID, TTL: ttl})
	return res, err
}

// HoldsLease asks the workflow (state query) whether leaseID is live.
func (c *Client) HoldsLease(ctx context.Context, ref entity.Ref, leaseID string) (bool, error) {
	st, ok, err := c.State(ctx, ref)
	if err != nil || !ok {
		return false, err
	}
	exp, held := st.Leases[leaseID]
	return held && exp.After(c.opts.Now()), nil
}

// ReleaseLease releases a lease; the release counts as a use (the idle timer
// counts from it).
func (c *Client) ReleaseLease(ctx context.Context, ref entity.Ref, leaseID string) error {
	return c.releaseLease(ctx, ref, leaseID, c.opts.Now())
}

// releaseLease releases the lease and reports a use at usedAt, in one
// signal (the release carries the use time).
func (c *Client) releaseLease(ctx context.Context, ref entity.Ref, leaseID string, usedAt time.Time) error {
	id := ref.WorkflowID()
	if err := c.opts.Temporal.SignalWorkflow(ctx, id, "", entity.SignalReleaseLease, entity.ReleaseLeaseSignal{LeaseID: leaseID, UsedAt: usedAt}); err != nil {
		return fmt.Errorf("release lease on %s: %w", id, err)
	}
	return nil
}

// State is the entity workflow's state (its state query); ok is false when
// no run of it exists.
func (c *Client) State(ctx context.Context, ref entity.Ref) (st entity.State, ok bool, err error) {
	v, err := c.opts.Temporal.QueryWorkflow(ctx, ref.WorkflowID(), "", entity.QueryState)
	if err != nil {
		if isWorkflowNotFound(err) {
			return entity.State{}, false, nil
		}
		return entity.State{}, false, fmt.Errorf("querying %s: %w", ref.WorkflowID(), err)
	}
	if err := v.Get(&st); err != nil {
		return entity.State{}, false, fmt.Errorf("decoding state of %s: %w", ref.WorkflowID(), err)
	}
	return st, true, nil
}
