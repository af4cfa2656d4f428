package daytona

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error kinds. They are matched with errors.Is against any error returned by this package;
// the concrete error is always an *Error carrying the HTTP status and Daytona's message.
var (
	// ErrNotFound: the sandbox, volume, snapshot or file does not exist (HTTP 404).
	ErrNotFound = errors.New("daytona: not found")
	// ErrConflict: a duplicate name, a transition in progress or a concurrent update (409).
	ErrConflict = errors.New("daytona: conflict")
	// ErrInvalidState: a lifecycle call not allowed in the current state (400 on lifecycle
	// calls), or a wait that ended in error/build_failed.
	ErrInvalidState = errors.New("daytona: invalid state")
	// ErrRateLimited: Daytona's throttler answered 429; see RetryAfter.
	ErrRateLimited = errors.New("daytona: rate limited")
	// ErrUnavailable: 5xx, or the server could not be reached.
	ErrUnavailable = errors.New("daytona: unavailable")
	// ErrTimeout: a command exceeded its timeout (408 from execute), or a wait ran out of time.
	ErrTimeout = errors.New("daytona: timeout")
	// ErrBadRequest: the request was rejected as invalid (400 outside lifecycle calls, 401,
	// 403 and other 4xx). Retrying the same request will not help.
	ErrBadRequest = errors.New("daytona: bad request")
	// ErrNotOwned: a deterministic name is taken by a sandbox whose labels say it belongs
	// to another entity. Find-or-create never adopts it; retrying will not help.
	ErrNotOwned = errors.New("daytona: sandbox name taken by another owner")
	// ErrOrgCapacity: the organisation's total CPU, memory, disk (or GPU) limit would be
	// exceeded by a create, start or recover. It frees only when other sandboxes of the
	// organisation stop, are archived or are deleted, so it is not Retryable: retrying the
	// same call at once will not help, and an operator or the user has to act.
	ErrOrgCapacity = errors.New("daytona: organisation out of capacity")
	// ErrOrgSuspended: Daytona suspended the organisation (e.g. depleted credits); no
	// sandbox or volume can be created or started until an operator resolves it.
	ErrOrgSuspended = errors.New("daytona: organisation suspended")
	// ErrVolumeQuota: the organisation has as many volumes as it may (Daytona's default
	// quota is 100); a new one needs a deleted one or a larger quota.
	ErrVolumeQuota = errors.New("daytona: volume quota exceeded")
)

// Error is the error type of every failed gateway call. Kind is one of the Err* values above
// (errors.Is(err, ErrNotFound) works through Unwrap); Status is the HTTP status (0 when no
// response arrived); Op names the gateway operation, for logs.
type Error struct {
	Kind       error
	Status     int
	Message    string
	RetryAfter time.Duration
	Op         string
	// Err is the underlying transport or decoding error, if any.
	Err error
}

// Error renders op, status and Daytona's message.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString("daytona ")
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Kind != nil {
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "daytona: "))
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil && e.Message == "" {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes both the kind and the underlying cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Retryable reports whether repeating the same call later may succeed: conflicts (a
// transition in progress), rate limiting, unavailability and wait timeouts. Not found,
// bad request and invalid state are permanent for the same request. Non-gateway errors
// (including context cancellation) are not retryable.
func Retryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) || errors.Is(err, context.Canceled) {
		return false
	}
	switch {
	case errors.Is(e.Kind, ErrConflict), errors.Is(e.Kind, ErrRateLimited), errors.Is(e.Kind, ErrUnavailable):
		return true
	}
	return false
}

// RetryAfter returns the delay Daytona asked for with Retry-After (429/503), or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// callClass tells the mapper how to read an ambiguous status (400 means "invalid state" for
// lifecycle calls, 408 is a command timeout on execute).
type callClass int

const (
	classPlain callClass = iota
	classLifecycle
	classExecute
)

// kindForStatus maps an HTTP status to an error kind.
func kindForStatus(status int, class callClass) error {
	switch {
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusConflict:
		return ErrConflict
	case status == http.StatusBadRequest && class == classLifecycle:
		return ErrInvalidState
	case status == http.StatusRequestTimeout && class == classExecute:
		return ErrTimeout
	case status == http.StatusRequestTimeout:
		return ErrUnavailable
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500:
		return ErrUnavailable
	default:
		return ErrBadRequest
	}
}

// Daytona's control plane tells some conditions apart only by its error message: the
// organisation's limits share 400 with every validation error, suspension shares 403
// with every permission error, a taken volume name, an inactive snapshot and a snapshot
// whose deactivation is still settling share 400 with any bad request, and the body has
// no code field. So these few messages, quoted from apps/api (v0.190.0: sandbox.service.ts,
// volume.service.ts, organization.service.ts, snapshot.service.ts), are matched here, and
// nowhere else in threadbox.
const (
	msgOrgSuspended  = "Organization is suspended"
	msgVolumeQuota   = "Volume quota exceeded"
	msgLimitExceeded = " limit exceeded. Maximum allowed: " // after "Total CPU|memory|disk|GPU"
	msgVolumeNamePre = "Volume with name "
	msgVolumeNameSuf = " already exists"
	msgSnapshotPre   = "Snapshot "
	msgInactiveSuf   = " is inactive"
	msgDeactivating  = "Snapshot deactivation is still in progress"
)

// kindFromMessage returns the kind a 400 or 403 from the control plane has by its message
// alone, or nil: capacity, suspension, the volume quota, and the activation of a snapshot
// deactivated less than 10 minutes ago, which Daytona asks to retry in a few minutes
// (a conflict with a transition in progress, so Retryable).
func kindFromMessage(status int, msg string) error {
	if status != http.StatusBadRequest && status != http.StatusForbidden {
		return nil
	}
	switch {
	case status == http.StatusBadRequest && strings.HasPrefix(msg, msgDeactivating):
		return ErrConflict
	case strings.HasPrefix(msg, "Total ") && strings.Contains(msg, msgLimitExceeded):
		return ErrOrgCapacity
	case strings.HasPrefix(msg, msgOrgSuspended):
		return ErrOrgSuspended
	case strings.HasPrefix(msg, msgVolumeQuota):
		return ErrVolumeQuota
	}
	return nil
}

// volumeNameTaken reports Daytona's 400 "Volume with name X already exists".
func volumeNameTaken(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest &&
		strings.HasPrefix(e.Message, msgVolumeNamePre) && strings.HasSuffix(e.Message, msgVolumeNameSuf)
}

// snapshotInactive reports a create's 400 "Snapshot X is inactive" (Daytona deactivates
// snapshots unused for two weeks).
func snapshotInactive(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest &&
		strings.HasPrefix(e.Message, msgSnapshotPre) && strings.HasSuffix(e.Message, msgInactiveSuf)
}

// errorBody is Daytona's API error JSON ({path,timestamp,statusCode,error,message}) and the
// toolbox's ErrorResponse; message may be a string or, from validation, a list.
type errorBody struct {
	Message json.RawMessage `json:"message"`
	Error   string          `json:"error"`
	Errors  []string        `json:"errors"`
}

// messageFromBody extracts a human message like the SDK's ConvertAPIError: message, then
// error, then the raw body (truncated).
func messageFromBody(body []byte) string {
	body = []byte(strings.TrimSpace(string(body)))
	if len(body) == 0 {
		return ""
	}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		if len(eb.Message) > 0 {
			var s string
			if json.Unmarshal(eb.Message, &s) == nil && s != "" {
				return s
			}
			var list []string
			if json.Unmarshal(eb.Message, &list) == nil && len(list) > 0 {
				return strings.Join(list, ", ")
			}
		}
		if eb.Error != "" {
			return eb.Error
		}
		if len(eb.Errors) > 0 {
			return strings.Join(eb.Errors, "; ")
		}
	}
	const max = 512
	if len(body) > max {
		body = body[:max]
	}
	return string(body)
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// bodyCarrier is implemented by the generated clients' GenericOpenAPIError (both modules).
type bodyCarrier interface {
	Body() []byte
}

// mapErr converts the result of a generated-client call (or a raw request) into an *Error.
// resp may be nil (transport failure); err may carry the response body.
func mapErr(op string, class callClass, resp *http.Response, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	if resp == nil || resp.StatusCode < 400 {
		// No HTTP error status: transport failure, context end, or a decoding problem.
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return &Error{Kind: ErrUnavailable, Status: status, Op: op, Err: err}
	}
	var body []byte
	var bc bodyCarrier
	if errors.As(err, &bc) {
		body = bc.Body()
	}
	e := statusErr(op, class, resp, body)
	e.Err = err
	return e
}

// statusErr builds an *Error from a response whose body has been read.
func statusErr(op string, class callClass, resp *http.Response, body []byte) *Error {
	e := &Error{
		Status:  resp.StatusCode,
		Message: messageFromBody(body),
		Op:      op,
	}
	if e.Kind = kindFromMessage(resp.StatusCode, e.Message); e.Kind == nil {
		e.Kind = kindForStatus(resp.StatusCode, class)
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = parseRetryAfter(resp.Header, time.Now())
	}
	return e
}
