// Package httpio holds the request and response conventions every route
// group of the API shares: JSON request bodies, byte ranges, and how user
// file content is typed.
package httpio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/daytona"
)

// MaxJSONBody caps JSON request bodies; file bodies have their own limit.
const MaxJSONBody = 1 << 20

// DecodeJSON reads a JSON request body into v: the content type must be
// JSON, the body at most MaxJSONBody bytes and a single well-formed value.
func DecodeJSON(c echo.Context, v any) error {
	req := c.Request()
	ct := req.Header.Get(echo.HeaderContentType)
	if ct == "" && req.ContentLength == 0 {
		return apierr.BadRequest("missing_body", "a JSON body is required")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != echo.MIMEApplicationJSON {
		return apierr.UnsupportedMediaType("the body must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), req.Body, MaxJSONBody))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apierr.TooLarge("JSON body exceeds 1 MiB")
		}
		if errors.Is(err, io.EOF) {
			return apierr.BadRequest("missing_body", "a JSON body is required")
		}
		return apierr.BadRequest("malformed_json", "the body is not valid JSON for this route: "+err.Error())
	}
	if dec.More() {
		return apierr.BadRequest("malformed_json", "the body must hold a single JSON value")
	}
	return nil
}

// ContentType is the type served for a file name: by extension, else
// application/octet-stream. Content is never sniffed.
func ContentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Range reads the request's Range header against a file of size bytes: the
// part to send and the status to send it with (206 and its Content-Range
// header for a satisfiable single range, 200 for the whole file). An
// unsatisfiable range is a 416 error; several ranges, or a malformed one,
// get the whole file, as RFC 9110 allows.
func Range(r *http.Request, h http.Header, size int64) (offset, length int64, status int, err error) {
	rh := r.Header.Get("Range")
	if rh == "" {
		return 0, size, http.StatusOK, nil
	}
	start, end, ok, satisfiable := parseRange(rh, size)
	switch {
	case ok && !satisfiable:
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		return 0, 0, 0, apierr.New(http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable", "the range is outside the file")
	case ok:
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
		return start, end - start + 1, http.StatusPartialContent, nil
	}
	return 0, size, http.StatusOK, nil
}

// parseRange reads a single "bytes=a-b", "bytes=a-" or "bytes=-n" range.
// ok is false for anything else; satisfiable is false when the range starts
// past the end.
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

// FileEntry is one entry of a directory listing.
type FileEntry struct {
	Name       string    `json:"name"`
	Size       int64     `json:"size"`
	IsDir      bool      `json:"is_dir"`
	ModifiedAt time.Time `json:"modified_at"`
}

// DirListing is the JSON answer for a directory.
type DirListing struct {
	Path    string      `json:"path"`
	Entries []FileEntry `json:"entries"`
}

// Listing is the JSON listing of the directory dir.
func Listing(dir string, list []daytona.FileInfo) DirListing {
	out := DirListing{Path: dir, Entries: make([]FileEntry, 0, len(list))}
	for _, e := range list {
		out.Entries = append(out.Entries, FileEntry{Name: e.Name, Size: e.Size, IsDir: e.IsDir, ModifiedAt: e.ModTime.UTC()})
	}
	return out
}

// Download opens length bytes of a file from offset.
type Download func(ctx context.Context, offset, length int64) (io.ReadCloser, error)

// ServeFile answers with the file name (described by info) streamed from
// open, honouring a single Range (206/416), with Content-Length, a type from
// the extension, Last-Modified and the headers that keep user content from
// running in a browser (UserContentHeaders). Once headers are out, a failure can only
// cut the body short; it is logged.
func ServeFile(c echo.Context, log *slog.Logger, name string, info daytona.FileInfo, open Download) error {
	ctx := c.Request().Context()
	h := c.Response().Header()
	offset, length, status, err := Range(c.Request(), h, info.Size)
	if err != nil {
		return err
	}
	var body io.ReadCloser
	if length > 0 && c.Request().Method != http.MethodHead {
		if body, err = open(ctx, offset, length); err != nil {
			return err
		}
		defer body.Close()
	}
	UserContentHeaders(h, name)
	h.Set(echo.HeaderContentLength, strconv.FormatInt(length, 10))
	h.Set("Accept-Ranges", "bytes")
	h.Set(echo.HeaderLastModified, info.ModTime.UTC().Format(http.TimeFormat))
	c.Response().WriteHeader(status)
	if body == nil {
		return nil
	}
	if _, err := io.CopyBuffer(struct{ io.Writer }{c.Response()}, body, make([]byte, copyBufSize)); err != nil {
		log.WarnContext(ctx, "file download interrupted", "path", name, "err", err)
	}
	return nil
}

// copyBufSize is the relay buffer of downloads: larger than io.Copy's
// 32 KiB, it halves the per-byte syscall and wake-up cost.
const copyBufSize = 256 << 10
