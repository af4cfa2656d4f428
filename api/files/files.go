// Package files serves /v1/files: a user's volume over REST, rooted at the
// volume ("/" is its root; answers name volume paths without the leading
// slash). Like WebDAV and uploads it reaches the volume only through a
// volume.Opener, so the quota, the spool-and-commit writes and the dead
// properties are the same on every path.
package files

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/volume"
)

// Routes serve /v1/files.
type Routes struct {
	Volumes volume.Opener
	// MaxBodyBytes caps a PUT body (Config.MaxBodyBytes); QuotaBytes is the
	// whole quota (a body larger than it can never fit).
	MaxBodyBytes int64
	QuotaBytes   int64
	Logger       *slog.Logger
}

// Register adds the files routes to the /v1 group.
func (f *Routes) Register(g *echo.Group) {
	g.GET("/files", f.get)
	g.PUT("/files", f.put)
	g.DELETE("/files", f.delete)
	g.POST("/files/move", f.move)
}

// volumePath reads ?path= as a volume path; missing or empty means the root
// only where allowRoot.
func volumePath(c echo.Context, allowRoot bool) (string, error) {
	p := c.QueryParam("path")
	if p == "" && allowRoot {
		p = "/"
	}
	return clientpath.Volume(p)
}

// shown is a volume path as answers name it.
func shown(p string) string { return strings.TrimPrefix(p, "/") }

func userOf(c echo.Context) string {
	p, _ := auth.PrincipalFrom(c.Request().Context())
	return p.UserID
}

// get is GET /v1/files?path=P: a file's bytes (single ranges supported) or a
// directory's listing. The download runs inside the use, so the files
// sandbox is held while it streams.
func (f *Routes) get(c echo.Context) error {
	p, err := volumePath(c, true)
	if err != nil {
		return err
	}
	return f.Volumes.Use(c.Request().Context(), userOf(c), volume.UseOptions{
		Replayable: func() bool { return !c.Response().Committed },
	}, func(ctx context.Context, v *volume.Volume) error {
		info, err := v.Stat(ctx, p)
		if err != nil {
			return err
		}
		if info.IsDir {
			list, err := v.List(ctx, p)
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, httpio.Listing(shown(p), list))
		}
		return httpio.ServeFile(c, f.Logger, p, info, func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
			return v.Download(ctx, p, off, n)
		})
	})
}

// put is PUT /v1/files?path=P: the body, streamed, becomes the file (parents
// created). Over MaxBodyBytes or larger than the whole quota: 413; more than
// the space left: 507. A failed write leaves nothing behind.
func (f *Routes) put(c echo.Context) error {
	p, err := volumePath(c, false)
	if err != nil {
		return err
	}
	if p == "/" {
		return apierr.InvalidPath("cannot write the volume root")
	}
	req := c.Request()
	if err := f.checkSize(req.ContentLength); err != nil {
		return err
	}
	body := &countingReader{r: http.MaxBytesReader(c.Response(), req.Body, f.MaxBodyBytes)}
	var n int64
	err = f.Volumes.Use(req.Context(), userOf(c), volume.UseOptions{
		Replayable: func() bool { return body.n == 0 },
	}, func(ctx context.Context, v *volume.Volume) error {
		n, err = v.Put(ctx, p, body, req.ContentLength)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"path": shown(p), "size": n})
}

// countingReader counts what was read, so a write is retried only before
// its first byte.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// checkSize refuses announced sizes that can never fit.
func (f *Routes) checkSize(n int64) error {
	switch {
	case n > f.MaxBodyBytes:
		return apierr.TooLarge("the body exceeds " + strconv.FormatInt(f.MaxBodyBytes, 10) + " bytes")
	case n > f.QuotaBytes:
		return apierr.TooLarge("the body is larger than the whole volume quota")
	}
	return nil
}

// delete is DELETE /v1/files?path=P[&recursive=true]. Without recursive a
// directory is removed only when empty, atomically in the sandbox.
func (f *Routes) delete(c echo.Context) error {
	p, err := volumePath(c, false)
	if err != nil {
		return err
	}
	if p == "/" {
		return apierr.InvalidPath("cannot delete the volume root")
	}
	recursive := false
	if v := c.QueryParam("recursive"); v != "" {
		if recursive, err = strconv.ParseBool(v); err != nil {
			return apierr.BadRequest("invalid_parameter", "recursive must be true or false")
		}
	}
	err = f.Volumes.Use(c.Request().Context(), userOf(c), volume.UseOptions{}, func(ctx context.Context, v *volume.Volume) error {
		if recursive {
			return v.Remove(ctx, p)
		}
		return v.RemoveFileOrEmptyDir(ctx, p)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type moveRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// move is POST /v1/files/move {"from","to"}; an existing destination is 409.
func (f *Routes) move(c echo.Context) error {
	var req moveRequest
	if err := httpio.DecodeJSON(c, &req); err != nil {
		return err
	}
	from, err := clientpath.Volume(req.From)
	if err != nil {
		return err
	}
	to, err := clientpath.Volume(req.To)
	if err != nil {
		return err
	}
	if from == "/" || to == "/" {
		return apierr.InvalidPath("cannot move the volume root")
	}
	err = f.Volumes.Use(c.Request().Context(), userOf(c), volume.UseOptions{}, func(ctx context.Context, v *volume.Volume) error {
		return v.Move(ctx, from, to, false)
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"from": shown(from), "to": shown(to)})
}
