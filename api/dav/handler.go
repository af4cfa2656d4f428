package dav

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/webdav"
)

// Methods are every method the WebDAV handler serves (echo's Any lacks the
// WebDAV-only ones, so routes must list them).
var Methods = []string{"OPTIONS", "GET", "HEAD", "POST", "DELETE", "PUT", "MKCOL", "COPY", "MOVE",
	"LOCK", "UNLOCK", "PROPFIND", "PROPPATCH"}

const allowHeader = "OPTIONS, LOCK, UNLOCK, GET, HEAD, POST, DELETE, PUT, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH"

// DefaultMaxLockTimeout caps LOCK timeouts when Handler.MaxLockTimeout is 0.
const DefaultMaxLockTimeout = time.Hour

// Handler serves a user's volume over WebDAV. It runs x/net/webdav per
// request over a fresh FS and fixes the engine's known problems on the way
// in and out:
//   - OPTIONS is answered without authentication or a sandbox (Windows gives
//     up when its first OPTIONS gets 401; the engine would Stat the volume).
//   - PROPFIND with Depth infinity (or none, which means infinity) is refused
//     with 403 propfind-finite-depth instead of walking the whole volume.
//   - MOVE without Overwrite means T (RFC 4918), not F (golang/go#66059).
//   - Destination is reduced to its path: proxies that rewrite Host made the
//     engine answer 502; the path itself is validated like the request's.
//   - LOCK timeouts are clamped (missing would be an infinite lock).
//   - GET/HEAD get a Content-Type from the extension, so the engine never
//     reads 512 bytes to sniff one.
//   - Failures the engine flattens into 405/403/500 (quota, sandbox down) are
//     answered with their real status through Fail.
//   - Paths with "..", NUL or over-long names (also percent-encoded, and in
//     Destination) are refused with 400 before anything is touched.
//   - COPY/MOVE of the root, or of a collection into itself, is 403 (the
//     engine would recurse into the copy it is making).
//   - Bodies other than PUT's are capped at MaxXMLBody (413).
type Handler struct {
	// Prefix is the mount point, e.g. "/dav" (no trailing slash).
	Prefix string
	Locks  *Locks
	// MaxLockTimeout caps LOCK timeouts (DefaultMaxLockTimeout when 0).
	MaxLockTimeout time.Duration
	Logger         *slog.Logger
	// Authenticate returns the request's user or an error for Fail (401).
	Authenticate func(r *http.Request) (string, error)
	// Open returns the user's volume; lease asks the files sandbox to stay up
	// for a transfer, and release must be called when the request ends.
	Open func(ctx context.Context, userID string, lease bool) (v *Volume, release func(), err error)
	// Fail writes an error response (JSON, status from the error).
	Fail func(w http.ResponseWriter, r *http.Request, err error)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		h.options(w)
		return
	}
	user, err := h.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="threadbox", charset="UTF-8"`)
		h.Fail(w, r, err)
		return
	}
	src, err := h.volumePath(r.URL.Path)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	if !h.fixRequest(w, r, src) {
		return
	}
	capBody := r.Method != http.MethodPut && r.Body != nil && r.Body != http.NoBody
	bodyLimit := int64(MaxXMLBody)
	if r.Method == "LOCK" {
		bodyLimit = MaxLockBody
	}
	if capBody && r.ContentLength > bodyLimit {
		h.Fail(w, r, &http.MaxBytesError{Limit: bodyLimit})
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodPut && r.ContentLength >= 0 {
		ctx = WithSizeHint(ctx, r.ContentLength)
	}
	lease := r.Method == http.MethodPut || r.Method == http.MethodGet || r.Method == "COPY" || r.Method == "MOVE"
	v, release, err := h.Open(ctx, user, lease)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	defer release()
	fs := NewFS(v)
	if capBody {
		r.Body = &cappedBody{ReadCloser: http.MaxBytesReader(w, r.Body, bodyLimit), fs: fs}
	}
	engine := &webdav.Handler{
		Prefix:     h.Prefix,
		FileSystem: fs,
		LockSystem: noteLocks{LockSystem: h.Locks.For(user), fs: fs},
		Logger: func(r *http.Request, err error) {
			if err != nil && h.Logger != nil {
				h.Logger.DebugContext(r.Context(), "webdav", "method", r.Method, "path", r.URL.Path, "err", err)
			}
		},
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		w.Header().Set("Accept-Ranges", "bytes")
	}
	g := &statusGuard{ResponseWriter: w, r: r, fs: fs, fail: h.Fail}
	engine.ServeHTTP(g, r.WithContext(ctx))
}

func (h *Handler) options(w http.ResponseWriter) {
	w.Header().Set("DAV", "1, 2")
	w.Header().Set("MS-Author-Via", "DAV")
	w.Header().Set("Allow", allowHeader)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// volumePath checks a decoded URL path under Prefix and returns the volume path.
func (h *Handler) volumePath(p string) (string, error) {
	rest, ok := strings.CutPrefix(p, h.Prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", &BadPathError{Reason: "path is outside " + h.Prefix + "/"}
	}
	return CleanPath(rest)
}

// fixRequest applies the request-side fixes; false means a response was
// written.
func (h *Handler) fixRequest(w http.ResponseWriter, r *http.Request, src string) bool {
	switch r.Method {
	case "PROPFIND":
		if d := r.Header.Get("Depth"); d != "0" && d != "1" {
			w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?>` +
				`<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>`))
			return false
		}
	case "COPY", "MOVE":
		hdr := r.Header.Get("Destination")
		if hdr == "" {
			break // the engine answers 400
		}
		u, err := url.Parse(hdr)
		if err != nil {
			h.Fail(w, r, &BadPathError{Reason: "Destination is not a URL"})
			return false
		}
		dst, err := h.volumePath(u.Path)
		if err != nil {
			h.Fail(w, r, err)
			return false
		}
		// Everything is inside the root: copying it anywhere would recurse.
		if src == "/" || strings.HasPrefix(dst, src+"/") {
			http.Error(w, "cannot copy or move a resource into itself", http.StatusForbidden)
			return false
		}
		r.Header.Set("Destination", (&url.URL{Path: u.Path}).EscapedPath())
		if r.Method == "MOVE" && r.Header.Get("Overwrite") == "" {
			r.Header.Set("Overwrite", "T")
		}
	case "LOCK":
		max := h.MaxLockTimeout
		if max <= 0 {
			max = DefaultMaxLockTimeout
		}
		r.Header.Set("Timeout", clampTimeout(r.Header.Get("Timeout"), max))
	case http.MethodGet, http.MethodHead:
		w.Header().Set("Content-Type", ContentTypeOf(src))
	}
	return true
}

// MaxXMLBody caps the request bodies of every method but PUT. The engine
// reads PROPFIND, PROPPATCH and LOCK bodies whole into memory (and keeps dead
// properties in PostgreSQL and lock owners in memory for an hour); no
// client sends more than a few KiB. Over it: 413, nothing touched.
const MaxXMLBody = 1 << 20

// MaxLockBody caps LOCK bodies: their owner XML is kept in memory for the
// lock's life (MaxLocksPerUser of them per user).
const MaxLockBody = 64 << 10

// cappedBody is a capped request body that records an overflow on the
// request's FS, so the engine's 400 for the cut-off XML is answered as 413.
type cappedBody struct {
	io.ReadCloser
	fs *FS
}

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		b.fs.note(err)
	}
	return n, err
}

// clampTimeout rewrites a LOCK Timeout header (RFC 4918 §10.7: a list of
// "Second-N" or "Infinite", first understood wins) to at most max.
func clampTimeout(hdr string, max time.Duration) string {
	limit := int64(max / time.Second)
	for _, v := range strings.Split(hdr, ",") {
		v = strings.TrimSpace(v)
		if s, ok := strings.CutPrefix(v, "Second-"); ok {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n <= limit {
				return "Second-" + strconv.FormatInt(n, 10)
			}
			break
		}
	}
	return "Second-" + strconv.FormatInt(limit, 10)
}

// statusGuard replaces the engine's generic error statuses with the real
// one when the FileSystem recorded a failure (quota → 507, sandbox → 503...),
// and drops the engine's plain-text body in that case. Lock and
// precondition outcomes (412, 423) are kept: they are protocol answers.
type statusGuard struct {
	http.ResponseWriter
	r         *http.Request
	fs        *FS
	fail      func(http.ResponseWriter, *http.Request, error)
	swallow   bool
	wroteHead bool
}

func (g *statusGuard) WriteHeader(code int) {
	if g.wroteHead {
		return
	}
	g.wroteHead = true
	if code >= 400 && code != http.StatusPreconditionFailed && code != http.StatusLocked {
		if err := g.fs.Err(); err != nil {
			g.swallow = true
			g.Header().Del("Content-Type")
			g.Header().Del("ETag")
			g.fail(g.ResponseWriter, g.r, err)
			return
		}
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *statusGuard) Write(p []byte) (int, error) {
	if !g.wroteHead {
		g.WriteHeader(http.StatusOK)
	}
	if g.swallow {
		return len(p), nil
	}
	return g.ResponseWriter.Write(p)
}

// copyBufSize is the buffer of streamed responses: larger than io.Copy's
// 32 KiB, it halves the per-byte syscall and wake-up cost of relaying a
// download from the sandbox.
const copyBufSize = 256 << 10

// ReadFrom relays a response body (GET) with a large buffer.
func (g *statusGuard) ReadFrom(src io.Reader) (int64, error) {
	if !g.wroteHead {
		g.WriteHeader(http.StatusOK)
	}
	if g.swallow {
		return io.Copy(io.Discard, src)
	}
	buf := make([]byte, copyBufSize)
	return io.CopyBuffer(struct{ io.Writer }{g.ResponseWriter}, src, buf)
}

func (g *statusGuard) Flush() {
	if f, ok := g.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (g *statusGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }
