package dav

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/davlock"
	"github.com/threadbox/threadbox/volume"
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
//   - LOCK timeouts are clamped (missing would be an infinite lock), and
//     LOCK itself is served by the wrapper (lock.go): shared locks too, and
//     a lockroot with the mount prefix. Locks live in PostgreSQL (davlock),
//     shared by every replica.
//   - The If header is evaluated whole, entity tags and "Not" included
//     (ifheader.go); the engine ignored both.
//   - An XML body binding a prefix to the empty namespace is 400 (the
//     engine's XML decoder accepts it).
//   - GET/HEAD get a Content-Type from the extension, so the engine never
//     reads 512 bytes to sniff one, and the headers that keep user content
//     from running on the API's origin (httpio.UserContentHeaders).
//   - Failures the engine flattens into 405/403/500 (quota, sandbox down) are
//     answered with their real status, in the API's JSON error shape.
//   - A files sandbox found stopped behind the cache is started again and the
//     request retried once (volume.Opener), like every other use.
//   - Paths with "..", NUL or over-long names (also percent-encoded, and in
//     Destination) are refused with 400 before anything is touched.
//   - COPY/MOVE of the root, or of a collection into itself, is 403 (the
//     engine would recurse into the copy it is making).
//   - Bodies other than PUT's are capped at MaxXMLBody (413).
type Handler struct {
	// Prefix is the mount point, e.g. "/dav" (no trailing slash).
	Prefix string
	// Locks is the lock table every replica shares.
	Locks *davlock.Store
	// MaxLockTimeout caps LOCK timeouts (DefaultMaxLockTimeout when 0).
	MaxLockTimeout time.Duration
	Logger         *slog.Logger
	// Volumes opens the authenticated user's volume. The API's
	// authentication has already put the principal in the request context.
	Volumes volume.Opener
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		h.options(w)
		return
	}
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="threadbox", charset="UTF-8"`)
		h.fail(w, r, auth.ErrInvalidKey)
		return
	}
	src, err := h.volumePath(r.URL.Path)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	dst, ok := h.fixRequest(w, r, src)
	if !ok {
		return
	}
	// Bodies other than PUT's are small XML documents: read them whole
	// (capped) so a use retried after a stopped files sandbox sees them
	// again. PUT streams; it can be retried only before its first byte.
	xmlBody, err := h.readXMLBody(w, r)
	if err == nil {
		err = checkNamespaces(xmlBody)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var ifh ifHeader
	if hdr := r.Header.Get("If"); hdr != "" {
		if ifh, ok = parseIf(hdr); !ok {
			h.fail(w, r, apierr.BadRequest("invalid_if_header", "the If header is malformed (RFC 4918 §10.4)"))
			return
		}
	}
	ctx := r.Context()
	if r.Method == http.MethodPut && r.ContentLength >= 0 {
		ctx = WithSizeHint(ctx, r.ContentLength)
	}
	var put *countingBody
	if r.Method == http.MethodPut && r.Body != nil {
		put = &countingBody{ReadCloser: r.Body}
		r.Body = put
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		w.Header().Set("Accept-Ranges", "bytes")
	}
	var g *statusGuard
	err = h.Volumes.Use(ctx, p.UserID, volume.UseOptions{Replayable: func() bool {
		return !g.wroteHead && (put == nil || put.n == 0)
	}}, func(ctx context.Context, v *volume.Volume) error {
		fs := NewFS(v)
		if xmlBody != nil {
			r.Body = io.NopCloser(bytes.NewReader(xmlBody))
		}
		if ifh != nil {
			holds, err := ifh.holds(ctx, src, h.volumePath, ifState{locks: lockCache(h.Locks, p.UserID, time.Now()), etag: fs.etag})
			if err != nil {
				return err
			}
			if !holds {
				writeStatus(w, http.StatusPreconditionFailed)
				return nil
			}
			// Evaluated: the engine only has to know there was a header, so it
			// confirms the request's locks once (its own evaluation would skip
			// a list tagged with another host, e.g. behind a proxy).
			r.Header.Set("If", "(<"+evaluatedIf+">)")
		}
		if r.Method == "LOCK" {
			return h.serveLock(ctx, w, r, fs, p.UserID, src, xmlBody, ifh)
		}
		locks := &requestLocks{ctx: ctx, store: h.Locks, user: p.UserID, src: src, dst: dst,
			tree: r.Method == http.MethodDelete || r.Method == "MOVE" || r.Method == "COPY", presented: ifh.tokens(), fs: fs, header: w.Header()}
		defer locks.releaseAll()
		engine := &webdav.Handler{
			Prefix:     h.Prefix,
			FileSystem: fs,
			LockSystem: locks,
			Logger: func(r *http.Request, err error) {
				if err != nil && h.Logger != nil {
					h.Logger.DebugContext(r.Context(), "webdav", "method", r.Method, "path", r.URL.Path, "err", err)
				}
			},
		}
		g = &statusGuard{ResponseWriter: w, fs: fs}
		engine.ServeHTTP(g, r.WithContext(ctx))
		return g.failure
	})
	if err != nil {
		h.fail(w, r, err)
	}
}

// evaluatedIf is the state token the wrapper leaves in an If header it has
// evaluated (any absolute URI would do; requestLocks ignores conditions).
const evaluatedIf = "urn:threadbox:if-header-evaluated"

// fail answers err in the API's JSON error shape (its status from apierr).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Del("ETag")
	w.Header().Del("Content-Disposition")
	apierr.Respond(w, r, err, h.logger(), "component", "webdav")
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

// readXMLBody reads the body of a non-PUT request, at most MaxXMLBody bytes
// (MaxLockBody for LOCK); nil when there is none.
func (h *Handler) readXMLBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method == http.MethodPut || r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	limit := int64(MaxXMLBody)
	if r.Method == "LOCK" {
		limit = MaxLockBody
	}
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", volume.ErrIncompleteBody, err)
	}
	return b, nil
}

// countingBody counts what the engine read of a PUT body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
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
		return "", &clientpath.Error{Reason: "path is outside " + h.Prefix + "/"}
	}
	return clientpath.Volume(rest)
}

// fixRequest applies the request-side fixes and returns the volume path of
// a COPY's or MOVE's Destination; false means a response was written.
func (h *Handler) fixRequest(w http.ResponseWriter, r *http.Request, src string) (dst string, ok bool) {
	switch r.Method {
	case "PROPFIND":
		if d := r.Header.Get("Depth"); d != "0" && d != "1" {
			w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?>` +
				`<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>`))
			return "", false
		}
	case "COPY", "MOVE":
		hdr := r.Header.Get("Destination")
		if hdr == "" {
			break // the engine answers 400
		}
		u, err := url.Parse(hdr)
		if err != nil {
			h.fail(w, r, &clientpath.Error{Reason: "Destination is not a URL"})
			return "", false
		}
		dst, err = h.volumePath(u.Path)
		if err != nil {
			h.fail(w, r, err)
			return "", false
		}
		// Everything is inside the root: copying it anywhere would recurse.
		if src == "/" || strings.HasPrefix(dst, src+"/") {
			h.fail(w, r, apierr.New(http.StatusForbidden, "forbidden", "cannot copy or move a resource into itself"))
			return "", false
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
		httpio.UserContentHeaders(w.Header(), src)
	}
	return dst, true
}

// MaxXMLBody caps the request bodies of every method but PUT. The engine
// reads PROPFIND, PROPPATCH and LOCK bodies whole into memory (and keeps dead
// properties and lock owners in PostgreSQL for up to an hour); no
// client sends more than a few KiB. Over it: 413, nothing touched.
const MaxXMLBody = 1 << 20

// MaxLockBody caps LOCK bodies: their owner XML is kept for the lock's life
// (MaxLocksPerUser of them per user).
const MaxLockBody = 64 << 10

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

// statusGuard holds back the engine's generic error statuses when the
// FileSystem recorded a real failure (quota, sandbox, database): nothing is
// written, and the failure is returned from the use, so it is retried when the
// files sandbox was found stopped, or else answered with its real status
// (507, 503, ...) by Handler.fail. Lock and precondition outcomes (412, 423)
// are protocol answers and pass.
type statusGuard struct {
	http.ResponseWriter
	fs        *FS
	failure   error
	wroteHead bool
}

func (g *statusGuard) WriteHeader(code int) {
	if g.wroteHead || g.failure != nil {
		return
	}
	if code >= 400 && code != http.StatusPreconditionFailed && code != http.StatusLocked {
		if err := g.fs.Err(); err != nil {
			g.failure = err
			return
		}
	}
	if code >= 400 {
		g.Header().Del("Content-Disposition") // an error text is no download
	}
	g.wroteHead = true
	g.ResponseWriter.WriteHeader(code)
}

func (g *statusGuard) Write(p []byte) (int, error) {
	if !g.wroteHead && g.failure == nil {
		g.WriteHeader(http.StatusOK)
	}
	if g.failure != nil {
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
	if !g.wroteHead && g.failure == nil {
		g.WriteHeader(http.StatusOK)
	}
	if g.failure != nil {
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
