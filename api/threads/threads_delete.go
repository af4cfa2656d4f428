package threads

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/db"
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
// the thread is gone for the user, and the next reconciler pass sends the
// workflow the delete it missed (activities.redeliverDelete).
func (t *Routes) delete(c echo.Context) error {
	ctx := c.Request().Context()
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	n, err := t.Queries.APIMarkThreadDeleted(ctx, db.APIMarkThreadDeletedParams{UserID: ref.UserID, ThreadID: ref.ThreadID})
	if err != nil {
		return fmt.Errorf("marking thread deleted: %w", err)
	}
	t.forgetGuard(ref)
	if n == 0 {
		return errThreadNotFound()
	}
	if err := t.Commands.EndThread(ctx, ref); err != nil {
		// Harmless: a command row of an earlier life of the thread is never shown.
		t.Logger.WarnContext(ctx, "forgetting a deleted thread's commands failed", "thread_id", ref.ThreadID, "err", err)
	}
	done, err := t.Sandboxes.Delete(ctx, ref, "deleted by user", deleteWait)
	if err != nil {
		return err
	}
	if !done {
		return c.NoContent(http.StatusAccepted)
	}
	return c.NoContent(http.StatusNoContent)
}
