package skills

import (
	"errors"
	"fmt"
)

// ErrTooLarge marks archives rejected by a size or count cap, so the API can
// answer 413 instead of 400. Test with errors.Is.
var ErrTooLarge = errors.New("skill archive too large")

// Error is a rejection of an archive or manifest that the uploader can fix.
// Code is a stable snake_case identifier; Message names the offending entry.
type Error struct {
	Code    string
	Message string
	tooBig  bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is lets errors.Is(err, ErrTooLarge) match cap violations.
func (e *Error) Is(target error) bool { return target == ErrTooLarge && e.tooBig }

func invalid(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *Error {
	return &Error{Code: "archive_too_large", Message: fmt.Sprintf(format, args...), tooBig: true}
}
