// Package apierr is where every error a client of the API can see gets its
// status, its stable snake_case code and its message: REST routes, WebDAV
// and tus uploads alike. Handlers return errors (an *Error when they decide
// the answer themselves, anything else wrapped with %w); Classify maps the
// domain and dependency errors once, and Respond writes the contract's JSON
// body {"error":{"code","message"}}. Internal details go to the log only.
package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/threadbox/threadbox/admission"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/command"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/sandboxfs"
	"github.com/threadbox/threadbox/skills"
	"github.com/threadbox/threadbox/volume"
)

// Error is an error a client may see: a status, a stable code and a human
// message.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
	Err        error // the cause, logged, never sent
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New is an Error with no cause.
func New(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// Constructors for the statuses of the contract.
func BadRequest(code, msg string) *Error { return New(http.StatusBadRequest, code, msg) }
func NotFound(msg string) *Error         { return New(http.StatusNotFound, "not_found", msg) }
func Conflict(code, msg string) *Error   { return New(http.StatusConflict, code, msg) }
func TooLarge(msg string) *Error         { return New(http.StatusRequestEntityTooLarge, "too_large", msg) }
func InvalidPath(msg string) *Error      { return BadRequest("invalid_path", msg) }
func UnsupportedMediaType(msg string) *Error {
	return New(http.StatusUnsupportedMediaType, "unsupported_media_type", msg)
}

// DatabaseRetryAfter is the Retry-After of database_unavailable: a
// PostgreSQL restart or failover takes seconds, and the pool reconnects on
// the next request.
const DatabaseRetryAfter = 2 * time.Second

// Classify turns any error into the client-facing Error. It is the only
// place where domain and dependency errors become HTTP statuses.
func Classify(err error) *Error {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	var limit *admission.Error
	if errors.As(err, &limit) {
		return &Error{Status: http.StatusTooManyRequests, Code: limit.Limit, Message: limit.Message(), RetryAfter: limit.RetryAfter}
	}
	if e := classifyHTTP(err); e != nil {
		return e
	}
	if e := classifyFiles(err); e != nil {
		return e
	}
	if e := classifyCommands(err); e != nil {
		return e
	}
	if e := classifyDependency(err); e != nil {
		return e
	}
	if db.Unavailable(err) {
		return &Error{Status: http.StatusServiceUnavailable, Code: "database_unavailable",
			Message: "the database is unavailable; retry later", RetryAfter: DatabaseRetryAfter, Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error", Err: err}
}

// classifyHTTP maps request-level failures: routing, bodies, credentials,
// paths, skill archives.
func classifyHTTP(err error) *Error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return New(http.StatusNotFound, "not_found", "no such route")
		case http.StatusMethodNotAllowed:
			return New(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			return TooLarge("request body too large")
		case http.StatusUnsupportedMediaType:
			return UnsupportedMediaType("unsupported content type")
		case http.StatusUnauthorized:
			return New(http.StatusUnauthorized, "unauthorized", "missing or invalid api key")
		}
		if he.Code >= 400 && he.Code < 500 {
			return New(he.Code, "bad_request", http.StatusText(he.Code))
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return TooLarge("request body exceeds " + strconv.FormatInt(mbe.Limit, 10) + " bytes")
	}
	if errors.Is(err, auth.ErrInvalidKey) {
		return New(http.StatusUnauthorized, "unauthorized", "missing or invalid api key")
	}
	var pe *clientpath.Error
	if errors.As(err, &pe) {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_path", Message: pe.Reason, Err: err}
	}
	var se *skills.Error
	if errors.As(err, &se) {
		if errors.Is(se, skills.ErrTooLarge) {
			return New(http.StatusRequestEntityTooLarge, se.Code, se.Message)
		}
		return BadRequest(se.Code, se.Message)
	}
	return nil
}

// classifyFiles maps failures about a client's files and volume.
func classifyFiles(err error) *Error {
	switch {
	case errors.Is(err, volume.ErrTooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Message: "the body is larger than the whole volume quota (DAYTONA_VOLUME_SIZE_GB)", Err: err}
	case errors.Is(err, volume.ErrWriteInterrupted):
		return &Error{Status: http.StatusConflict, Code: "write_interrupted",
			Message: "the directory was removed while the file was being written; nothing was stored", Err: err}
	case errors.Is(err, volume.ErrQuotaExceeded):
		return &Error{Status: http.StatusInsufficientStorage, Code: "quota_exceeded",
			Message: "the volume quota (DAYTONA_VOLUME_SIZE_GB) would be exceeded", Err: err}
	case errors.Is(err, volume.ErrIncompleteBody):
		return &Error{Status: http.StatusBadRequest, Code: "incomplete_body", Message: "the request body ended before it was complete", Err: err}
	}
	var fe *sandboxfs.Error
	if !errors.As(err, &fe) {
		return nil
	}
	p := fe.Path
	e := &Error{Err: err}
	switch {
	case errors.Is(fe.Kind, fs.ErrNotExist):
		e.Status, e.Code, e.Message = http.StatusNotFound, "file_not_found", "no such file or directory: "+p
	case errors.Is(fe.Kind, fs.ErrExist):
		e.Status, e.Code, e.Message = http.StatusConflict, "file_exists", "destination exists: "+p
	case errors.Is(fe.Kind, sandboxfs.ErrIsDir):
		e.Status, e.Code, e.Message = http.StatusConflict, "is_a_directory", p+" is a directory"
		if fe.Op == "delete" {
			e.Message += "; pass recursive=true to delete it"
		}
	case errors.Is(fe.Kind, sandboxfs.ErrNotDir):
		e.Status, e.Code, e.Message = http.StatusConflict, "not_a_directory", "a component of "+p+" is not a directory"
	case errors.Is(fe.Kind, sandboxfs.ErrNotEmpty):
		e.Status, e.Code, e.Message = http.StatusConflict, "directory_not_empty", p+" is not empty; pass recursive=true"
	case errors.Is(fe.Kind, volume.ErrIntoItself):
		e.Status, e.Code, e.Message = http.StatusBadRequest, "invalid_move", "cannot move a resource onto or into itself: "+p
	case errors.Is(fe.Kind, volume.ErrRoot):
		e.Status, e.Code, e.Message = http.StatusForbidden, "forbidden", "not allowed on the volume root"
	default:
		e.Status, e.Code, e.Message = http.StatusBadRequest, "file_operation_failed", p+": the sandbox refused the operation"
	}
	return e
}

// classifyCommands maps the background commands' errors.
func classifyCommands(err error) *Error {
	switch {
	case errors.Is(err, command.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "command not found", Err: err}
	case errors.Is(err, command.ErrTooMany):
		return &Error{Status: http.StatusTooManyRequests, Code: "too_many_commands", Message: command.ErrTooMany.Error() + "; wait for one to end", RetryAfter: 5 * time.Second, Err: err}
	case errors.Is(err, command.ErrNotRunning):
		return &Error{Status: http.StatusConflict, Code: "command_not_running", Message: "the command has ended", Err: err}
	case errors.Is(err, command.ErrNotStarted):
		return &Error{Status: http.StatusServiceUnavailable, Code: "sandbox_unavailable", Message: "the command's processes cannot be found in the sandbox; retry", RetryAfter: time.Second, Err: err}
	case errors.Is(err, command.ErrStreamEnded):
		return &Error{Status: http.StatusServiceUnavailable, Code: "sandbox_provider_unavailable", Message: "the command's output stream broke off; follow it again", RetryAfter: time.Second, Err: err}
	}
	return nil
}

// classifyDependency maps failures of Daytona, Temporal and the entity
// workflows.
func classifyDependency(err error) *Error {
	switch {
	case errors.Is(err, daytona.ErrRateLimited):
		ra := daytona.RetryAfter(err)
		if ra <= 0 {
			ra = 5 * time.Second
		}
		return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "the sandbox provider is rate limiting; retry later", RetryAfter: ra, Err: err}
	case errors.Is(err, daytona.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: "sandbox_provider_unavailable", Message: "the sandbox provider is unavailable; retry later", RetryAfter: 5 * time.Second, Err: err}
	case errors.Is(err, daytona.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Code: "timeout", Message: "the operation timed out", Err: err}
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case entity.ErrTypeEntityDeleted:
			// The thread was deleted while this request waited for it.
			return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "thread not found", Err: err}
		case entity.ErrTypeSandboxUnavailable:
			return &Error{Status: http.StatusServiceUnavailable, Code: "sandbox_unavailable",
				Message: "the sandbox could not be started; retry later", RetryAfter: 5 * time.Second, Err: err}
		case entity.ErrTypeOrgCapacity:
			return &Error{Status: http.StatusServiceUnavailable, Code: "sandbox_capacity_exhausted",
				Message:    "the sandbox provider's capacity (CPU, memory or disk) for this service is used up; retry later or delete threads you no longer need",
				RetryAfter: time.Minute, Err: err}
		case entity.ErrTypeOrgSuspended:
			return &Error{Status: http.StatusServiceUnavailable, Code: "sandbox_provider_suspended",
				Message: "the sandbox provider has suspended this service's account; the operator must act", RetryAfter: 5 * time.Minute, Err: err}
		case entity.ErrTypeVolumeQuota:
			return &Error{Status: http.StatusServiceUnavailable, Code: "volume_quota_exhausted",
				Message: "the sandbox provider's volume limit is reached; the operator must raise it or use the shared volume strategy", RetryAfter: 5 * time.Minute, Err: err}
		}
	}
	var exhausted *serviceerror.ResourceExhausted
	if errors.As(err, &exhausted) {
		// Too many concurrent updates or requests for one workflow.
		return &Error{Status: http.StatusTooManyRequests, Code: "too_many_requests",
			Message: "too many concurrent requests for this sandbox; retry shortly", RetryAfter: time.Second, Err: err}
	}
	var unavailable *serviceerror.Unavailable
	if errors.As(err, &unavailable) {
		return &Error{Status: http.StatusServiceUnavailable, Code: "orchestrator_unavailable", Message: "the workflow service is unavailable; retry later", RetryAfter: 5 * time.Second, Err: err}
	}
	return nil
}

// ServerFault reports whether an error is the service's (or a dependency's)
// fault and deserves an error log; a full volume (507) is the client's
// condition, like a 4xx.
func ServerFault(e *Error) bool {
	return e.Status >= 500 && e.Status != http.StatusInsufficientStorage
}

// Body is the contract's error body.
type Body struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Respond classifies err, logs it by severity (server faults as errors,
// client conditions with a cause at info) and writes the JSON error. attrs
// are added to the log line (method, path, request id).
func Respond(w http.ResponseWriter, r *http.Request, err error, log *slog.Logger, attrs ...any) {
	e := Classify(err)
	attrs = append(attrs, "status", e.Status, "code", e.Code, "err", err, "method", r.Method, "path", r.URL.Path)
	switch {
	case ServerFault(e):
		log.ErrorContext(r.Context(), "request failed", attrs...)
	case e.Err != nil:
		log.InfoContext(r.Context(), "request refused", attrs...)
	}
	Write(w, r, e)
}

// RetryAfterValue is d as a Retry-After header value: whole seconds,
// rounded up (a client told 0 would retry at once).
func RetryAfterValue(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}

// Write sends e as the response (no body for HEAD).
func Write(w http.ResponseWriter, r *http.Request, e *Error) {
	h := w.Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", RetryAfterValue(e.RetryAfter))
	}
	if e.Status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", `Bearer realm="threadbox"`)
	}
	var body Body
	body.Error.Code, body.Error.Message = e.Code, e.Message
	b, _ := json.Marshal(body)
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	if r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(b, '\n'))
}

// Message is the message of a client-facing error, or a generic text for
// anything internal (details go to the log): for errors reported inside a
// successful answer, such as one file of a batch.
func Message(err error) string {
	e := Classify(err)
	if ServerFault(e) {
		return "internal error"
	}
	return e.Message
}
