package threads

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/sandbox"
	"github.com/threadbox/threadbox/sandboxfs"
	"github.com/threadbox/threadbox/volume"
)

// files is the thread sandbox's file view: absolute sandbox paths.
func files(sb *sandbox.Sandbox) sandboxfs.FS { return sandboxfs.FS{TB: sb.Toolbox, Root: "/"} }

// fileNeed is how long a file operation needs the sandbox: a short call,
// bounded so a warm thread with a short idle interval still skips Temporal.
// A longer transfer is held by the sandbox client anyway.
func (t *Routes) fileNeed() time.Duration {
	return min(time.Minute, t.Config.AutoStopInterval.Duration()/4)
}

// FilePath is the path rule of every thread file route: raw resolved by
// clientpath.Thread (a relative path stays under the sandbox's home), and,
// for a route that changes what is there (write, delete, move, upload),
// the sandbox's root, its home, the volume mount and their ancestors
// refused: on Daytona a recursive delete runs inside the sandbox, where the
// user's volume (shared by all their threads) is mounted.
func FilePath(raw string, changes bool) (string, error) {
	p, err := clientpath.Thread(raw)
	if err != nil {
		return "", err
	}
	if changes && clientpath.Protected(p) {
		return "", apierr.InvalidPath("cannot change " + p + ": it holds the sandbox's home or the user's volume")
	}
	return p, nil
}

// queryPath reads and validates ?path= (see FilePath).
func queryPath(c echo.Context, changes bool) (string, error) {
	if !c.QueryParams().Has("path") {
		return "", apierr.InvalidPath("the path query parameter is required")
	}
	return FilePath(c.QueryParam("path"), changes)
}

// VolumeViews gives the user's volume as seen through one of their
// sandboxes (volume.Service.Over): thread file writes under the volume
// mount go through it, with the volume's quota and spool-and-commit rules.
type VolumeViews interface {
	Over(userID string, tb sandboxfs.Toolbox) *volume.Volume
}

// write writes r (size bytes, -1 unknown) to p in the thread's sandbox:
// under the volume mount through the volume (quota reserved first, the file
// replaced only when complete), elsewhere straight to the sandbox's disk.
func (t *Routes) write(ctx context.Context, sb *sandbox.Sandbox, user, p string, r io.Reader, size int64) error {
	if rel, ok := clientpath.InVolume(p); ok {
		_, err := t.Volumes.Over(user, sb.Toolbox).Put(ctx, rel, r, size)
		return err
	}
	return files(sb).Upload(ctx, p, r)
}

// tooLargeForVolume refuses a body announced larger than the whole volume
// quota when p is in the volume: it can never fit (413, like /v1/files).
func (t *Routes) tooLargeForVolume(p string, size int64) error {
	if _, ok := clientpath.InVolume(p); ok && size > t.Config.VolumeQuotaBytes() {
		return apierr.TooLarge("the body is larger than the whole volume quota")
	}
	return nil
}

// getFile is GET /v1/threads/{id}/files?path=P: a directory listing as JSON,
// or the file's bytes streamed with Content-Length, a Content-Type from the
// extension and single-range support (206/416). The download runs inside
// the use, so the sandbox is held for as long as it streams.
func (t *Routes) getFile(c echo.Context) error {
	p, err := queryPath(c, false)
	if err != nil {
		return err
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	return t.Sandboxes.Use(c.Request().Context(), ref, sandbox.UseOptions{
		Need: t.fileNeed(), Guard: t.guard(ref),
		Replayable: func() bool { return !c.Response().Committed },
	}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		fs := files(sb)
		info, err := fs.Stat(ctx, p)
		if err != nil {
			return err
		}
		if info.IsDir {
			entries, err := fs.List(ctx, p)
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, httpio.Listing(p, entries))
		}
		return httpio.ServeFile(c, t.Logger, p, info, func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			return fs.Download(ctx, p, off, n)
		})
	})
}

// cappedReader counts what was read and turns reading past limit into
// errBodyTooLarge, so a streamed body is capped without buffering.
type cappedReader struct {
	r     io.Reader
	n     atomic.Int64
	limit int64
	over  atomic.Bool
}

func (cr *cappedReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	if total := cr.n.Add(int64(n)); total > cr.limit {
		cr.over.Store(true)
		return n, cr.tooLarge()
	}
	return n, err
}

func (cr *cappedReader) tooLarge() error {
	return apierr.TooLarge("the body exceeds " + strconv.FormatInt(cr.limit, 10) + " bytes")
}

// putFile is PUT /v1/threads/{id}/files?path=P: the body is streamed into
// the sandbox (parents created, an existing file replaced). Bodies over
// Config.MaxBodyBytes are 413, before anything is sent when Content-Length
// says so. Under the volume mount the write obeys the volume's quota (507
// when it does not fit, 413 when larger than the whole quota). 201
// {"path","size"}.
func (t *Routes) putFile(c echo.Context) error {
	p, err := queryPath(c, true)
	if err != nil {
		return err
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	limit := t.Config.MaxBodyBytes
	req := c.Request()
	body := &cappedReader{r: req.Body, limit: limit}
	if req.ContentLength > limit {
		return body.tooLarge()
	}
	if err := t.tooLargeForVolume(p, req.ContentLength); err != nil {
		return err
	}
	err = t.Sandboxes.Use(req.Context(), ref, sandbox.UseOptions{
		Need: t.fileNeed(), Guard: t.guard(ref),
		Replayable: func() bool { return body.n.Load() == 0 },
	}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		return t.write(ctx, sb, ref.UserID, p, body, req.ContentLength)
	})
	if body.over.Load() {
		return body.tooLarge()
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"path": p, "size": body.n.Load()})
}

// deleteFile is DELETE /v1/threads/{id}/files?path=P[&recursive=true]: 204.
func (t *Routes) deleteFile(c echo.Context) error {
	p, err := queryPath(c, true)
	if err != nil {
		return err
	}
	recursive := false
	if v := c.QueryParam("recursive"); v != "" {
		if recursive, err = strconv.ParseBool(v); err != nil {
			return apierr.BadRequest("invalid_parameter", "recursive must be true or false")
		}
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	err = t.Sandboxes.Use(c.Request().Context(), ref, sandbox.UseOptions{Need: t.fileNeed(), Guard: t.guard(ref)}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		return files(sb).Delete(ctx, p, recursive)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type moveRequest struct {
	From *string `json:"from"`
	To   *string `json:"to"`
}

// moveFile is POST /v1/threads/{id}/files/move {"from","to"}: 200 with the
// resolved paths; an existing destination is 409 (Daytona never overwrites).
func (t *Routes) moveFile(c echo.Context) error {
	var req moveRequest
	if err := httpio.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.From == nil || req.To == nil {
		return apierr.InvalidPath("from and to are required")
	}
	from, err := FilePath(*req.From, true)
	if err != nil {
		return err
	}
	to, err := FilePath(*req.To, true)
	if err != nil {
		return err
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	err = t.Sandboxes.Use(c.Request().Context(), ref, sandbox.UseOptions{Need: t.fileNeed(), Guard: t.guard(ref)}, func(ctx context.Context, sb *sandbox.Sandbox) error {
		return files(sb).Move(ctx, from, to)
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"from": from, "to": to})
}
