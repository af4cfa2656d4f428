package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/entity"
)

// Delete sends the entity's delete update (starting the workflow if it is not
// running, so a thread whose run ended still gets its sandbox destroyed) and
// waits up to wait for the run to finish. done is false when the delete was
// accepted but is still running; the workflow completes it on its own.
func (c *Client) Delete(ctx context.Context, ref entity.Ref, cause string, wait time.Duration) (done bool, err error) {
	id := ref.WorkflowID()
	c.Forget(ref)
	defer c.Forget(ref) // a use that raced the delete may have cached it again
	release := c.acquire(ctx, id)
	if release == nil {
		return false, fmt.Errorf("waiting for an update slot: %w", ctx.Err())
	}
	defer release()
	req := entity.DeleteRequest{RequestID: uuid.NewString(), Cause: cause}
	actx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	h, err := c.opts.Temporal.UpdateWithStartWorkflow(actx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: c.startOperation(ref),
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID:     req.RequestID,
			WorkflowID:   id,
			UpdateName:   entity.UpdateDelete,
			Args:         []any{req},
			WaitForStage: client.WorkflowUpdateStageAccepted,
		},
	})
	if err != nil {
		return false, fmt.Errorf("delete %s: %w", id, err)
	}
	if err := h.Get(actx, nil); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return false, nil
		}
		return false, fmt.Errorf("delete %s: %w", id, err)
	}
	// Wait for the run to close too, so a create right after this answer
	// starts a fresh run instead of meeting the closing one.
	if err := c.opts.Temporal.GetWorkflow(actx, id, "").Get(actx, nil); err != nil && actx.Err() != nil {
		return false, nil
	}
	return true, nil
}
