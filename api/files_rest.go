package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/threadbox/threadbox/entity"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/dav"
)

// volumePath reads the path query parameter as a path inside the volume and
// returns the canonical volume path ("/a/b"). Missing or empty means the root
// only where allowRoot.
func volumePath(c echo.Context, name string, allowRoot bool) (string, error) {
	p := c.QueryParam(name)
	if p == "" && allowRoot {
		p = "/"
	}
	return toVolumePath(p)
}

// toVolumePath confines a client path to the volume (cleanSandboxPath) and
// strips the mount point.
//
// A path that still spells ".." once percent-decoded ("%2e%2e", "..%2f") is
// refused as well: no one decodes it later, but a client sending it is
// attempting traversal through some layer that might.
func toVolumePath(p string) (string, error) {
	if u, err := url.PathUnescape(p); err == nil && u != p {
		if _, err := dav.CleanPath(u); err != nil {
			return "", errInvalidPath("encoded traversal in path")
		}
	}
	abs, err := cleanSandboxPath(p, entity.VolumeMountPath)
	if err != nil {
		return "", err
	}
	rel := strings.TrimPrefix(abs, entity.VolumeMountPath)
	if rel == "" {
		rel = "/"
	}
	return rel, nil
}

func clientPath(p string) string { return strings.TrimPrefix(p, "/") }

// get is GET /v1/files?path=P: a file's bytes (single ranges supported) or a
// directory's listing.
func (f *filesAPI) get(c echo.Context) error {
	p, err := volumePath(c, "path", true)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v, release, err := f.openVolume(ctx, principal(c).UserID, true)
	if err != nil {
		return err
	}
	defer release()
	info, err := v.Stat(ctx, p)
	if err != nil {
		return volumeError(clientPath(p), err)
	}
	if info.IsDir {
		list, err := v.List(ctx, p)
		if err != nil {
			return volumeError(clientPath(p), err)
		}
		return c.JSON(http.StatusOK, listingOf(clientPath(p), list))
	}
	offset, length, status, err := requestedRange(c, info.Size)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	var body io.ReadCloser = io.NopCloser(strings.NewReader(""))
	if length > 0 {
		if body, err = v.TB.Download(ctx, v.Abs(p), offset, length); err != nil {
			return volumeError(clientPath(p), err)
		}
	}
	defer body.Close()
	h.Set("Accept-Ranges", "bytes")
	h.Set(echo.HeaderContentLength, strconv.FormatInt(length, 10))
	return c.Stream(status, dav.ContentTypeOf(p), body)
}

// put is PUT /v1/files?path=P: the body, streamed, becomes the file (parents
// created). Over MaxBodyBytes or larger than the whole quota: 413; more than
// the space left: 507. A failed write leaves nothing behind.
func (f *filesAPI) put(c echo.Context) error {
	p, err := volumePath(c, "path", false)
	if err != nil {
		return err
	}
	if p == "/" {
		return errInvalidPath("cannot write the volume root")
	}
	req := c.Request()
	if err := f.checkSize(req.ContentLength); err != nil {
		return err
	}
	body := http.MaxBytesReader(c.Response(), req.Body, f.s.cfg.MaxBodyBytes)
	ctx := req.Context()
	v, release, err := f.openVolume(ctx, principal(c).UserID, true)
	if err != nil {
		return err
	}
	defer release()
	n, err := v.Put(ctx, p, body, req.ContentLength)
	if err != nil {
		return volumeError(clientPath(p), err)
	}
	return c.JSON(http.StatusCreated, map[string]any{"path": clientPath(p), "size": n})
}

// checkSize refuses announced sizes that can never fit.
func (f *filesAPI) checkSize(n int64) error {
	switch {
	case n > f.s.cfg.MaxBodyBytes:
		return errTooLarge("the body exceeds " + strconv.FormatInt(f.s.cfg.MaxBodyBytes, 10) + " bytes")
	case n > f.s.cfg.VolumeQuotaBytes():
		return errTooLarge("the body is larger than the whole volume quota")
	}
	return nil
}

// delete is DELETE /v1/files?path=P[&recursive=true].
func (f *filesAPI) delete(c echo.Context) error {
	p, err := volumePath(c, "path", false)
	if err != nil {
		return err
	}
	if p == "/" {
		return errInvalidPath("cannot delete the volume root")
	}
	recursive := c.QueryParam("recursive") == "true"
	ctx := c.Request().Context()
	v, release, err := f.openVolume(ctx, principal(c).UserID, false)
	if err != nil {
		return err
	}
	defer release()
	if !recursive {
		info, err := v.Stat(ctx, p)
		if err != nil {
			return volumeError(clientPath(p), err)
		}
		if info.IsDir {
			list, err := v.List(ctx, p)
			if err != nil {
				return volumeError(clientPath(p), err)
			}
			if len(list) > 0 {
				return errConflict("directory_not_empty", "the directory is not empty; pass recursive=true")
			}
		}
	}
	if err := v.Remove(ctx, p); err != nil {
		return volumeError(clientPath(p), err)
	}
	return c.NoContent(http.StatusNoContent)
}

type moveRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// move is POST /v1/files/move {"from","to"}; an existing destination is 409.
func (f *filesAPI) move(c echo.Context) error {
	var req moveRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	from, err := toVolumePath(req.From)
	if err != nil {
		return err
	}
	to, err := toVolumePath(req.To)
	if err != nil {
		return err
	}
	if from == "/" || to == "/" {
		return errInvalidPath("cannot move the volume root")
	}
	ctx := c.Request().Context()
	v, release, err := f.openVolume(ctx, principal(c).UserID, true)
	if err != nil {
		return err
	}
	defer release()
	if err := v.Move(ctx, from, to, false); err != nil {
		return volumeError(clientPath(from), err)
	}
	return c.JSON(http.StatusOK, map[string]string{"from": clientPath(from), "to": clientPath(to)})
}

// davHandler is the WebDAV wrapper wired to the API's auth and errors.
func (f *filesAPI) davHandler() http.Handler {
	return &dav.Handler{
		Prefix: "/dav",
		Locks:  f.locks,
		Logger: f.s.log,
		Authenticate: func(r *http.Request) (string, error) {
			p, err := f.s.authenticate(r)
			if err != nil {
				return "", err
			}
			return p.UserID, nil
		},
		Open: func(ctx context.Context, userID string, lease bool) (*dav.Volume, func(), error) {
			return f.openVolume(ctx, userID, lease)
		},
		Fail: f.davFail,
	}
}

// davFail writes an error for WebDAV with the API's JSON error body.
func (f *filesAPI) davFail(w http.ResponseWriter, r *http.Request, err error) {
	e := classify(volumeError(r.URL.Path, err))
	if serverFault(e) {
		f.s.log.ErrorContext(r.Context(), "webdav request failed", "status", e.Status, "code", e.Code,
			"err", err, "method", r.Method, "path", r.URL.Path)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+999_999_999)/1_000_000_000)))
	}
	var body errorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(body)
	}
}
