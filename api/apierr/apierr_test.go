package apierr_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/sandboxfs"
	"github.com/threadbox/threadbox/volume"
)

// Every failure a client can meet on a file gets its answer from the kind
// sandboxfs found, never from Daytona's text: the real daemon sends none,
// and the emulator's named host paths.
func TestClassifyFileErrors(t *testing.T) {
	cause := &daytona.Error{Kind: daytona.ErrBadRequest, Status: 400, Message: "stat /srv/.threadbox/emulator/sandboxes/4f1c/x: not a directory"}
	cases := []struct {
		kind   error
		op     string
		status int
		code   string
		msg    string
	}{
		{fs.ErrNotExist, "read", 404, "file_not_found", "no such file or directory: /a/b"},
		{fs.ErrExist, "move", 409, "file_exists", "destination exists: /a/b"},
		{sandboxfs.ErrIsDir, "write", 409, "is_a_directory", "/a/b is a directory"},
		{sandboxfs.ErrIsDir, "delete", 409, "is_a_directory", "/a/b is a directory; pass recursive=true to delete it"},
		{sandboxfs.ErrNotDir, "write", 409, "not_a_directory", "a component of /a/b is not a directory"},
		{sandboxfs.ErrNotEmpty, "delete", 409, "directory_not_empty", "/a/b is not empty; pass recursive=true"},
		{sandboxfs.ErrRefused, "write", 400, "file_operation_failed", "/a/b: the sandbox refused the operation"},
		{volume.ErrIntoItself, "move", 400, "invalid_move", "cannot move a resource onto or into itself: /a/b"},
		{volume.ErrRoot, "delete", 403, "forbidden", "not allowed on the volume root"},
	}
	for _, c := range cases {
		err := &sandboxfs.Error{Op: c.op, Path: "/a/b", Kind: c.kind, Err: cause}
		e := apierr.Classify(err)
		require.Equal(t, c.status, e.Status, "%v", c.kind)
		require.Equal(t, c.code, e.Code, "%v", c.kind)
		require.Equal(t, c.msg, e.Message, "%v", c.kind)
		require.NotContains(t, e.Message, "/srv/", "Daytona's text never reaches the client")
		require.ErrorIs(t, e, daytona.ErrBadRequest, "the cause is kept for the log")
	}
}

func TestClassifyRequestAndQuotaErrors(t *testing.T) {
	_, perr := clientpath.Volume("../x")
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{perr, 400, "invalid_path"},
		{volume.ErrQuotaExceeded, 507, "quota_exceeded"},
		{volume.ErrIncompleteBody, 400, "incomplete_body"},
		{&http.MaxBytesError{Limit: 10}, 413, "too_large"},
		{&daytona.Error{Kind: daytona.ErrUnavailable}, 503, "sandbox_provider_unavailable"},
		{&daytona.Error{Kind: daytona.ErrRateLimited}, 429, "rate_limited"},
		{fmt.Errorf("authenticating: %w", db.ErrUnavailable), 503, "database_unavailable"},
		{fmt.Errorf("reading body: %w", io.ErrUnexpectedEOF), 500, "internal"},
	} {
		e := apierr.Classify(c.err)
		require.Equal(t, c.status, e.Status, "%v", c.err)
		require.Equal(t, c.code, e.Code, "%v", c.err)
	}
}

func TestClassifyHidesInternalErrors(t *testing.T) {
	e := apierr.Classify(errors.New("pq: password authentication failed for user secret"))
	require.Equal(t, 500, e.Status)
	require.Equal(t, "internal", e.Code)
	require.NotContains(t, e.Message, "secret")
}

func TestWriteShapeAndRetryAfter(t *testing.T) {
	rec := httptest.NewRecorder()
	apierr.Write(rec, httptest.NewRequest(http.MethodGet, "/", nil), apierr.Classify(&daytona.Error{Kind: daytona.ErrUnavailable}))
	require.Equal(t, 503, rec.Code)
	require.Equal(t, "5", rec.Header().Get("Retry-After"))
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.JSONEq(t, `{"error":{"code":"sandbox_provider_unavailable","message":"the sandbox provider is unavailable; retry later"}}`, rec.Body.String())
}
