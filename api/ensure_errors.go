package api

import (
	"errors"
	"net/http"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/threadbox/threadbox/entity"
)

// classifyEntityError maps the failures of the sandbox entity workflows
// (called from classify, the one place errors become statuses); nil means
// "not one of these".
func classifyEntityError(err error) *Error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case entity.ErrTypeEntityDeleted:
			// The thread was deleted while this request waited for it.
			return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "thread not found", Err: err}
		case entity.ErrTypeSandboxUnavailable:
			return &Error{Status: http.StatusServiceUnavailable, Code: "sandbox_unavailable",
				Message: "the sandbox could not be started; retry later", RetryAfter: 5 * time.Second, Err: err}
		}
	}
	var exhausted *serviceerror.ResourceExhausted
	if errors.As(err, &exhausted) {
		// Too many concurrent updates or requests for one workflow.
		return &Error{Status: http.StatusTooManyRequests, Code: "too_many_requests",
			Message: "too many concurrent requests for this sandbox; retry shortly", RetryAfter: time.Second, Err: err}
	}
	return nil
}
