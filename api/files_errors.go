package api

import (
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/threadbox/threadbox/api/dav"
)

// volumeError turns the dav package's errors into client errors; anything
// else (daytona, Temporal, database) is left for classify.
func volumeError(p string, err error) error {
	var apiErr *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &apiErr):
		return err
	case errors.Is(err, dav.ErrBadPath):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_path", Message: err.Error(), Err: err}
	case errors.Is(err, dav.ErrQuotaExceeded):
		return &Error{Status: http.StatusInsufficientStorage, Code: "quota_exceeded",
			Message: "the volume quota (DAYTONA_VOLUME_SIZE_GB) would be exceeded", Err: err}
	case os.IsNotExist(err):
		return &Error{Status: http.StatusNotFound, Code: "file_not_found", Message: "no such file or directory: " + p}
	case os.IsExist(err):
		return &Error{Status: http.StatusConflict, Code: "file_exists", Message: "destination exists: " + p}
	case os.IsPermission(err):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "not allowed on the volume root", Err: err}
	case errors.Is(err, dav.ErrIncompleteBody):
		return &Error{Status: http.StatusBadRequest, Code: "incomplete_body", Message: "the request body ended before it was complete", Err: err}
	case errors.Is(err, dav.ErrIntoItself):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_move", Message: "cannot move a resource onto or into itself: " + p}
	case errors.Is(err, dav.ErrTooManyLocks):
		return &Error{Status: http.StatusTooManyRequests, Code: "too_many_locks",
			Message: "too many live WebDAV locks; unlock some or wait for them to expire", RetryAfter: time.Minute, Err: err}
	case errors.Is(err, dav.ErrIsDir):
		return &Error{Status: http.StatusConflict, Code: "is_a_directory", Message: p + " is a directory"}
	}
	return fileError(p, err)
}
