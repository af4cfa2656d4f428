package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/skills"
)

// Error is an error a client may see: a status, a stable snake_case code and a
// human message. Handlers return it (or wrap it with %w); everything else is
// mapped once, in errorResponse, and internal details go to the log only.
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

func newError(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// Constructors for the statuses of the contract.
func errBadRequest(code, msg string) *Error { return newError(http.StatusBadRequest, code, msg) }
func errNotFound(msg string) *Error         { return newError(http.StatusNotFound, "not_found", msg) }
func errConflict(code, msg string) *Error   { return newError(http.StatusConflict, code, msg) }
func errTooLarge(msg string) *Error {
	return newError(http.StatusRequestEntityTooLarge, "too_large", msg)
}
func errInsufficientStorage(msg string) *Error {
	return newError(http.StatusInsufficientStorage, "quota_exceeded", msg)
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// classify turns any error into the client-facing Error. It is the only place
// where domain and dependency errors become HTTP statuses.
func classify(err error) *Error {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return newError(http.StatusNotFound, "not_found", "no such route")
		case http.StatusMethodNotAllowed:
			return newError(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			return errTooLarge("request body too large")
		case http.StatusUnsupportedMediaType:
			return newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "unsupported content type")
		case http.StatusUnauthorized:
			return newError(http.StatusUnauthorized, "unauthorized", "missing or invalid api key")
		}
		if he.Code >= 400 && he.Code < 500 {
			return newError(he.Code, "bad_request", http.StatusText(he.Code))
		}
	}
	var se *skills.Error
	if errors.As(err, &se) {
		if errors.Is(se, skills.ErrTooLarge) {
			return newError(http.StatusRequestEntityTooLarge, se.Code, se.Message)
		}
		return errBadRequest(se.Code, se.Message)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge("request body exceeds " + strconv.FormatInt(mbe.Limit, 10) + " bytes")
	}
	if errors.Is(err, auth.ErrInvalidKey) {
		return newError(http.StatusUnauthorized, "unauthorized", "missing or invalid api key")
	}
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
	if e := classifyEntityError(err); e != nil {
		return e
	}
	var unavailable *serviceerror.Unavailable
	if errors.As(err, &unavailable) {
		return &Error{Status: http.StatusServiceUnavailable, Code: "orchestrator_unavailable", Message: "the workflow service is unavailable; retry later", RetryAfter: 5 * time.Second, Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error", Err: err}
}

// handleError is echo's HTTPErrorHandler.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.log.WarnContext(c.Request().Context(), "error after response started", "err", err, "request_id", requestID(c))
		return
	}
	e := classify(err)
	attrs := []any{"status", e.Status, "code", e.Code, "err", err,
		"method", c.Request().Method, "path", c.Request().URL.Path, "request_id", requestID(c)}
	switch {
	case serverFault(e):
		s.log.ErrorContext(c.Request().Context(), "request failed", attrs...)
	case e.Err != nil:
		// A client-side condition with a cause worth keeping (a rate-limited
		// dependency, a full volume).
		s.log.InfoContext(c.Request().Context(), "request refused", attrs...)
	}
	writeError(c, e)
}

// serverFault reports whether an error is the service's (or a dependency's)
// fault and deserves an error log; a full volume (507) is the client's
// condition, like a 4xx.
func serverFault(e *Error) bool {
	return e.Status >= 500 && e.Status != http.StatusInsufficientStorage
}

func writeError(c echo.Context, e *Error) {
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if e.Status == http.StatusUnauthorized && c.Response().Header().Get("WWW-Authenticate") == "" {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="threadbox"`)
	}
	var body errorBody
	body.Error.Code = e.Code
	body.Error.Message = e.Message
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(e.Status)
		return
	}
	_ = c.JSON(e.Status, body)
}
