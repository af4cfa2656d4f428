package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/entity"
)

// daytonaErrorType names a gateway error for Temporal (ApplicationError type),
// so histories and the UI show what kind of Daytona failure it was.
func daytonaErrorType(err error) string {
	switch {
	case errors.Is(err, daytona.ErrOrgCapacity):
		return entity.ErrTypeOrgCapacity
	case errors.Is(err, daytona.ErrOrgSuspended):
		return entity.ErrTypeOrgSuspended
	case errors.Is(err, daytona.ErrVolumeQuota):
		return entity.ErrTypeVolumeQuota
	case errors.Is(err, daytona.ErrNotFound):
		return "DaytonaNotFound"
	case errors.Is(err, daytona.ErrConflict):
		return "DaytonaConflict"
	case errors.Is(err, daytona.ErrInvalidState):
		return "DaytonaInvalidState"
	case errors.Is(err, daytona.ErrRateLimited):
		return "DaytonaRateLimited"
	case errors.Is(err, daytona.ErrUnavailable):
		return "DaytonaUnavailable"
	case errors.Is(err, daytona.ErrTimeout):
		return "DaytonaTimeout"
	default:
		return "DaytonaBadRequest"
	}
}

// temporalError converts an activity failure into the error Temporal should
// see. Daytona 4xx answers (other than 408 and 429, which the gateway maps to
// retryable kinds) are non-retryable: repeating the same request cannot help.
// A 429's Retry-After becomes the next retry delay. Other errors (database,
// context) stay plain and are retried under the caller's capped policy.
func temporalError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var de *daytona.Error
	if !errors.As(err, &de) {
		return fmt.Errorf("%s: %w", op, err)
	}
	retryable := daytona.Retryable(err) || errors.Is(err, daytona.ErrTimeout)
	opts := temporal.ApplicationErrorOptions{NonRetryable: !retryable, Cause: err}
	if d := daytona.RetryAfter(err); d > 0 {
		opts.NextRetryDelay = d
	}
	return temporal.NewApplicationErrorWithOptions(op+": "+err.Error(), daytonaErrorType(err), opts)
}

// goneError tells the workflow the sandbox no longer exists.
func goneError(sandboxID string, cause error) error {
	msg := "sandbox " + sandboxID + " is gone"
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return temporal.NewApplicationErrorWithOptions(msg, entity.ErrTypeSandboxGone,
		temporal.ApplicationErrorOptions{NonRetryable: true, Category: temporal.ApplicationErrorCategoryBenign})
}

// IsSandboxGone reports whether an activity error says the sandbox is gone.
func IsSandboxGone(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == entity.ErrTypeSandboxGone
}
