package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/threadbox/threadbox/entity"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/daytona"
)

// fileNeed is how long a file operation needs the sandbox: a short call,
// bounded so a warm thread with a short idle interval still skips Temporal.
func (t *threadAPI) fileNeed() time.Duration {
	return min(time.Minute, t.s.cfg.AutoStopInterval.Duration()/4)
}

// transferNeed adds the time to move n bytes at a pessimistic 8 MiB/s, so a
// large upload is covered (by a lease when it outlives the idle interval).
func (t *threadAPI) transferNeed(n int64) time.Duration {
	if n <= 0 {
		return t.fileNeed()
	}
	return t.fileNeed() + time.Duration(n/(8<<20))*time.Second
}

// fileError turns a toolbox error about a client's file into the answer the
// client should see; other errors pass through to classify. Of Daytona's
// message only the reason is shown (see refusalReason); the whole error is
// kept as the cause, for the log.
func fileError(p string, err error) error {
	var de *daytona.Error
	if !errors.As(err, &de) {
		return err
	}
	switch {
	case errors.Is(err, daytona.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "file_not_found", Message: "no such file or directory: " + p}
	case errors.Is(err, daytona.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "file_exists", Message: "destination exists: " + p}
	case errors.Is(err, daytona.ErrBadRequest):
		return &Error{Status: http.StatusBadRequest, Code: "file_operation_failed", Message: p + ": " + refusalReason(de.Message), Err: err}
	}
	return err
}

// refusalReason is the part of a toolbox refusal a client may see. The
// daemon's messages are Go errors such as "stat /abs/path: not a directory",
// and the path is the daemon's own (the emulator's is a host path under its
// state directory): only the reason after the last ": " is kept, and only
// when it names no path.
func refusalReason(msg string) string {
	const generic = "the sandbox refused the operation"
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "/") {
		msg = msg[i+2:]
	}
	msg = strings.TrimSpace(msg)
	if msg == "" || strings.Contains(msg, "/") {
		return generic
	}
	return msg
}

// threadQueryPath reads and validates ?path=.
func threadQueryPath(c echo.Context) (string, error) {
	if !c.QueryParams().Has("path") {
		return "", errInvalidPath("the path query parameter is required")
	}
	return threadPath(c.QueryParam("path"))
}

type fileEntry struct {
	Name       string    `json:"name"`
	Size       int64     `json:"size"`
	IsDir      bool      `json:"is_dir"`
	ModifiedAt time.Time `json:"modified_at"`
}

type dirListing struct {
	Path    string      `json:"path"`
	Entries []fileEntry `json:"entries"`
}

// getFile is GET /v1/threads/{id}/files?path=P: a directory listing as JSON,
// or the file's bytes streamed with Content-Length, a Content-Type from the
// extension and single-range support (206/416).
func (t *threadAPI) getFile(c echo.Context) error {
	p, err := threadQueryPath(c)
	if err != nil {
		return err
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	var (
		info    daytona.FileInfo
		entries []daytona.FileInfo
		tb      *daytona.Toolbox
		used    ensured
	)
	err = t.sb.Use(c.Request().Context(), ref, useOptions{Need: t.fileNeed(), Guard: t.guard(ref)}, func(ctx context.Context, sb *ensured) error {
		tb, used = sb.Toolbox, *sb
		var err error
		if info, err = tb.Stat(ctx, p); err != nil {
			return err
		}
		if info.IsDir {
			entries, err = tb.List(ctx, p)
		}
		return err
	})
	if err != nil {
		return fileError(p, err)
	}
	if info.IsDir {
		return c.JSON(http.StatusOK, listingOf(p, entries))
	}

	offset, length, status, err := requestedRange(c, info.Size)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	ctx := c.Request().Context()
	var body io.ReadCloser
	if length > 0 {
		if body, err = tb.Download(ctx, p, offset, length); err != nil {
			return fileError(p, err)
		}
		defer body.Close()
		// The download may outlast the window the stat was ensured for: hold
		// the sandbox while it streams, and count its end as the use.
		used.LeaseID = ""
		stop := t.sb.Hold(&used)
		defer func() { stop(); t.sb.Done(&used) }()
	}
	ct := mime.TypeByExtension(path.Ext(p))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set(echo.HeaderContentType, ct)
	h.Set(echo.HeaderContentLength, strconv.FormatInt(length, 10))
	h.Set("Accept-Ranges", "bytes")
	h.Set(echo.HeaderLastModified, info.ModTime.UTC().Format(http.TimeFormat))
	c.Response().WriteHeader(status)
	if body == nil || c.Request().Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(c.Response(), body); err != nil {
		// Headers are out: the client sees a short body; log only.
		t.s.log.WarnContext(ctx, "file download interrupted", "path", p, "err", err)
	}
	return nil
}

// parseRange reads a single "bytes=a-b", "bytes=a-" or "bytes=-n" range.
// ok is false for anything else (the whole file is then served, as RFC 9110
// allows); satisfiable is false when the range starts past the end.
// isDir reports whether p is a directory in the sandbox; it is asked only on
// an error path, to name an error the toolbox answers with a bare 400.
func isDir(ctx context.Context, tb *daytona.Toolbox, p string) bool {
	fi, err := tb.Stat(ctx, p)
	return err == nil && fi.IsDir
}

// listingOf is the JSON listing of the directory dir.
func listingOf(dir string, list []daytona.FileInfo) dirListing {
	out := dirListing{Path: dir, Entries: make([]fileEntry, 0, len(list))}
	for _, e := range list {
		out.Entries = append(out.Entries, fileEntry{Name: e.Name, Size: e.Size, IsDir: e.IsDir, ModifiedAt: e.ModTime.UTC()})
	}
	return out
}

// requestedRange reads the request's Range header against a file of size
// bytes: the part to send and the status to send it with (206 and its
// Content-Range header for a satisfiable single range, 200 for the whole
// file). An unsatisfiable range is a 416 Error.
func requestedRange(c echo.Context, size int64) (offset, length int64, status int, err error) {
	rh := c.Request().Header.Get("Range")
	if rh == "" {
		return 0, size, http.StatusOK, nil
	}
	start, end, ok, satisfiable := parseRange(rh, size)
	switch {
	case ok && !satisfiable:
		c.Response().Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		return 0, 0, 0, &Error{Status: http.StatusRequestedRangeNotSatisfiable, Code: "range_not_satisfiable", Message: "the range is outside the file"}
	case ok:
		c.Response().Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
		return start, end - start + 1, http.StatusPartialContent, nil
	}
	return 0, size, http.StatusOK, nil
}

func parseRange(h string, size int64) (start, end int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, false
		}
		if size == 0 {
			return 0, 0, true, false
		}
		return max(0, size-n), size - 1, true, true
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 {
			return 0, 0, false, false
		}
		e := size - 1
		if b != "" {
			if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
				return 0, 0, false, false
			}
			e = min(e, size-1)
		}
		if s >= size {
			return 0, 0, true, false
		}
		return s, e, true, true
	}
}

// cappedReader counts what was read and turns reading past limit into
// errCappedBodyTooLarge, so a streamed body is capped without buffering.
type cappedReader struct {
	r     io.Reader
	n     atomic.Int64
	limit int64
	over  atomic.Bool
}

var errCappedBodyTooLarge = errors.New("request body too large")

func (cr *cappedReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	if total := cr.n.Add(int64(n)); total > cr.limit {
		cr.over.Store(true)
		return n, errCappedBodyTooLarge
	}
	return n, err
}

// putFile is PUT /v1/threads/{id}/files?path=P: the body is streamed into
// the sandbox (parents created, an existing file replaced). Bodies over
// Config.MaxBodyBytes are 413, before anything is sent when Content-Length
// says so. 201 {"path","size"}.
func (t *threadAPI) putFile(c echo.Context) error {
	p, err := threadQueryPath(c)
	if err != nil {
		return err
	}
	if protectedThreadPath(p) {
		return errInvalidPath("cannot write to " + p)
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	limit := t.s.cfg.MaxBodyBytes
	req := c.Request()
	if req.ContentLength > limit {
		return errTooLarge("the body exceeds " + strconv.FormatInt(limit, 10) + " bytes")
	}
	body := &cappedReader{r: req.Body, limit: limit}
	err = t.sb.Use(req.Context(), ref, useOptions{
		Need: t.transferNeed(req.ContentLength), Guard: t.guard(ref),
		Replayable: func() bool { return body.n.Load() == 0 },
	}, func(ctx context.Context, sb *ensured) error {
		err := sb.Toolbox.Upload(ctx, p, body)
		if errors.Is(err, daytona.ErrBadRequest) && isDir(ctx, sb.Toolbox, p) {
			// The toolbox answers a bare 400 here; say what it was, as /v1/files does.
			return &Error{Status: http.StatusConflict, Code: "is_a_directory", Message: p + " is a directory"}
		}
		return err
	})
	if body.over.Load() {
		return errTooLarge("the body exceeds " + strconv.FormatInt(limit, 10) + " bytes")
	}
	if err != nil {
		return fileError(p, err)
	}
	return c.JSON(http.StatusCreated, map[string]any{"path": p, "size": body.n.Load()})
}

// protectedThreadPath names directories whose removal or replacement would break
// the sandbox or unmount the user's volume from the thread's view.
func protectedThreadPath(p string) bool {
	switch p {
	case "/", entity.HomeDir, entity.HomeDir + "/volume":
		return true
	}
	return false
}

// deleteFile is DELETE /v1/threads/{id}/files?path=P[&recursive=true]: 204.
func (t *threadAPI) deleteFile(c echo.Context) error {
	p, err := threadQueryPath(c)
	if err != nil {
		return err
	}
	recursive := false
	if v := c.QueryParam("recursive"); v != "" {
		if recursive, err = strconv.ParseBool(v); err != nil {
			return errBadRequest("invalid_parameter", "recursive must be true or false")
		}
	}
	if protectedThreadPath(p) {
		return errInvalidPath("cannot delete " + p)
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	err = t.sb.Use(c.Request().Context(), ref, useOptions{Need: t.fileNeed(), Guard: t.guard(ref)}, func(ctx context.Context, sb *ensured) error {
		err := sb.Toolbox.Delete(ctx, p, recursive)
		if !recursive && errors.Is(err, daytona.ErrBadRequest) && isDir(ctx, sb.Toolbox, p) {
			return errConflict("is_a_directory", p+" is a directory; pass recursive=true to delete it")
		}
		return err
	})
	if err != nil {
		return fileError(p, err)
	}
	return c.NoContent(http.StatusNoContent)
}

type threadMoveRequest struct {
	From *string `json:"from"`
	To   *string `json:"to"`
}

// moveFile is POST /v1/threads/{id}/files/move {"from","to"}: 200 with the
// resolved paths; an existing destination is 409 (Daytona never overwrites).
func (t *threadAPI) moveFile(c echo.Context) error {
	var req threadMoveRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.From == nil || req.To == nil {
		return errInvalidPath("from and to are required")
	}
	from, err := threadPath(*req.From)
	if err != nil {
		return err
	}
	to, err := threadPath(*req.To)
	if err != nil {
		return err
	}
	if protectedThreadPath(from) || protectedThreadPath(to) {
		return errInvalidPath("cannot move " + from + " to " + to)
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	err = t.sb.Use(c.Request().Context(), ref, useOptions{Need: t.fileNeed(), Guard: t.guard(ref)}, func(ctx context.Context, sb *ensured) error {
		return sb.Toolbox.Move(ctx, from, to)
	})
	if err != nil {
		return fileError(from, err)
	}
	return c.JSON(http.StatusOK, map[string]string{"from": from, "to": to})
}
