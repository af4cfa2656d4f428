package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/uploads"
)

// uploadSpoolTTL is how long an interrupted upload can be resumed.
const uploadSpoolTTL = 24 * time.Hour

// uploadRoutes mounts tus at /v1/uploads/ (authenticated like the rest of
// /v1; the principal in the request context is the upload's owner).
func (f *filesAPI) uploadRoutes(v1 *echo.Group) error {
	svc, err := uploads.New(uploads.Config{
		Dir:      f.s.cfg.UploadDir,
		BasePath: "/v1/uploads/",
		MaxSize:  f.s.cfg.VolumeQuotaBytes(),
		SpoolTTL: uploadSpoolTTL,
		Queries:  f.s.q,
		Logger:   f.s.log.With("component", "uploads"),
		UserFrom: func(ctx context.Context) (string, bool) {
			p, ok := PrincipalFrom(ctx)
			return p.UserID, ok && p.UserID != ""
		},
		CleanPath: func(p string) (string, error) {
			vp, err := toVolumePath(p)
			if err == nil && vp == "/" {
				err = errInvalidPath("the destination must be a file in the volume")
			}
			return vp, err
		},
		Admit: func(ctx context.Context, user string, size int64) error {
			if size > f.s.cfg.VolumeQuotaBytes() {
				return errTooLarge("the upload is larger than the whole volume quota")
			}
			v, release, err := f.openVolume(ctx, user, false)
			if err != nil {
				return err
			}
			defer release()
			pending, err := f.s.q.ReceivingUploadBytes(ctx, user)
			if err != nil {
				return fmt.Errorf("reading pending uploads: %w", err)
			}
			return volumeError("", v.Quota.Check(ctx, size+pending, 0))
		},
		Push: func(ctx context.Context, user, p string, r io.Reader, size int64) error {
			v, release, err := f.openVolume(ctx, user, true)
			if err != nil {
				return err
			}
			defer release()
			_, err = v.Put(ctx, p, r, size)
			return volumeError(clientPath(p), err)
		},
		Status: func(err error) (int, string, string) {
			e := classify(volumeError("", err))
			if serverFault(e) {
				f.s.log.Error("upload failed", "status", e.Status, "code", e.Code, "err", err)
			}
			return e.Status, e.Code, e.Message
		},
	})
	if err != nil {
		return err
	}
	f.s.closers = append(f.s.closers, svc.Close)
	h := echo.WrapHandler(jsonErrors(http.StripPrefix("/v1/uploads", svc.Handler())))
	v1.Any("/uploads", h)
	v1.Any("/uploads/*", h)
	return nil
}
