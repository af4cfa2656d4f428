package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/threadbox/threadbox/entity"
)

// Delete asks the entity's workflow to destroy its sandbox and end, and waits
// up to wait for the run to close. done is false when the delete was sent but
// the run had not closed yet; the workflow completes it on its own.
//
// The delete travels as a signal (Signal-With-Start: a thread whose run has
// ended is started just to process it), not as an update: an update needs one
// of Temporal's ten in-flight update slots per workflow, which ensures stuck
// behind a slow Daytona can fill, and a user's delete must always get through.
func (c *Client) Delete(ctx context.Context, ref entity.Ref, cause string, wait time.Duration) (done bool, err error) {
	id := ref.WorkflowID()
	c.Forget(ref)
	defer c.Forget(ref) // a use that raced the delete may have cached it again
	req := entity.DeleteRequest{RequestID: uuid.NewString(), Cause: cause}
	run, err := c.opts.Temporal.SignalWithStartWorkflow(ctx, id, entity.SignalDelete, req,
		c.startOptions(ref), ref.Kind.WorkflowName(), c.input(ref))
	if err != nil {
		return false, fmt.Errorf("delete %s: %w", id, err)
	}
	// Wait for the run to close, so a create right after this answer starts
	// a fresh run instead of meeting the closing one.
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := c.opts.Temporal.GetWorkflow(wctx, id, run.GetRunID()).Get(wctx, nil); err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			return false, nil
		}
		if ctx.Err() != nil {
			return false, fmt.Errorf("delete %s: %w", id, ctx.Err())
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return false, fmt.Errorf("delete %s: %w", id, err)
		}
		return false, nil
	}
	return true, nil
}
