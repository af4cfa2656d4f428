package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
)

// deleteWait is how long DELETE waits for the sandbox to be destroyed before
// it answers 202 instead of 204.
const deleteWait = 30 * time.Second

// delete is DELETE /v1/threads/{id}. The row is marked deleted first, in a
// plain transaction, so from then on no request can start the thread again
// (every Temporal call is preceded by a row check); then the workflow is told
// to destroy the sandbox with an Update-With-Start of `delete` (a thread
// whose workflow is not running is started just to process it).
//
// 204: the sandbox is gone. 202: the workflow accepted the delete but had not
// finished within deleteWait; it completes on its own. If Temporal cannot be
// reached the error is returned (503) although the row already says deleted:
// the thread is gone for the user, and the workflow's idle timers stop and
// delete the sandbox anyway.
func (t *threadAPI) delete(c echo.Context) error {
	ctx := c.Request().Context()
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	n, err := t.s.q.APIMarkThreadDeleted(ctx, db.APIMarkThreadDeletedParams{UserID: ref.UserID, ThreadID: ref.ThreadID})
	if err != nil {
		return fmt.Errorf("marking thread deleted: %w", err)
	}
	if n == 0 {
		return errThreadNotFound()
	}
	t.sb.Invalidate(ref)
	done, err := t.sb.Delete(ctx, ref, "deleted by user", deleteWait)
	t.sb.Invalidate(ref) // an ensure that raced the delete may have cached it again
	if err != nil {
		return err
	}
	if !done {
		return c.NoContent(http.StatusAccepted)
	}
	return c.NoContent(http.StatusNoContent)
}

// Delete sends the entity's delete update (starting the workflow if it is not
// running) and waits up to wait for it to finish. done is false when it was
// accepted but is still running.
func (c *sandboxClient) Delete(ctx context.Context, ref entity.Ref, cause string, wait time.Duration) (done bool, err error) {
	id := ref.WorkflowID()
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
	c.Invalidate(ref)
	return true, nil
}
