package uploads

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/uploadspool"
)

// Metadata keys: path is the client's destination; owner is set by the
// create hook (never by the client) and checked on every request.
const (
	metaPath  = "path"
	metaOwner = "owner"
	metaName  = "filename"
)

// idPattern is the form of the ids the create hook assigns; anything else is
// "not found" before it can reach the filestore as a file name.
var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// store wraps the spool with the owner check, the "finished" view of
// uploads already pushed into the volume, the renewal of an upload's
// reservation on every PATCH, the push of a complete upload whose first
// push failed (on the client's next HEAD or PATCH), and the release of a
// cancelled upload's reservation.
type store struct {
	fs      uploadspool.Spool
	queries *db.Queries
	// ttl is how long an upload's reservation lasts after its last PATCH.
	ttl time.Duration
	// finish pushes a complete upload into the volume (Service.finish).
	finish func(ctx context.Context, info handler.FileInfo) error
	// cancelled releases a terminated upload (Service.cancelled).
	cancelled func(ctx context.Context, id string) error
}

// methodKey carries the request method to the store: only HEAD and PATCH
// may finish an upload (a DELETE cancels it).
type methodKey struct{}

func withMethod(ctx context.Context, m string) context.Context {
	return context.WithValue(ctx, methodKey{}, m)
}

func finishes(ctx context.Context) bool {
	m, _ := ctx.Value(methodKey{}).(string)
	return m == http.MethodHead || m == http.MethodPatch
}

// owner is the authenticated user of a request context.
func owner(ctx context.Context) (string, bool) {
	p, ok := auth.PrincipalFrom(ctx)
	return p.UserID, ok
}

func (s *store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	user, ok := owner(ctx)
	if !ok || info.MetaData[metaOwner] != user || !idPattern.MatchString(info.ID) {
		return nil, handler.ErrNotFound
	}
	return s.fs.NewUpload(ctx, info)
}

func (s *store) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	user, ok := owner(ctx)
	if !ok || !idPattern.MatchString(id) {
		return nil, handler.ErrNotFound
	}
	up, err := s.fs.GetUpload(ctx, id)
	if err == nil {
		info, err := up.GetInfo(ctx)
		if err != nil {
			return nil, err
		}
		if info.MetaData[metaOwner] != user {
			return nil, handler.ErrNotFound
		}
		if info.Offset < info.Size || info.SizeIsDeferred || !finishes(ctx) {
			return spoolUpload{Upload: up, s: s, id: id}, nil
		}
		// Complete in the spool but not stored: its push failed. Try again
		// now; the client learns the outcome from this answer.
		if err := s.finish(ctx, info); err != nil {
			return nil, err
		}
		return storedUpload{info: info}, nil
	}
	if !errors.Is(err, handler.ErrNotFound) {
		return nil, err
	}
	// The spool is gone: either it was pushed into the volume (answer as
	// finished, so a client that lost the final response learns it), or it
	// never existed, failed or expired.
	row, err := s.queries.GetUpload(ctx, db.GetUploadParams{ID: id, UserID: user})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && row.State != stateStored) {
		return nil, handler.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return storedUpload{info: handler.FileInfo{
		ID: id, Size: row.Size, Offset: row.Size,
		MetaData: handler.MetaData{metaPath: row.Path, metaOwner: user},
	}}, nil
}

func (s *store) AsTerminatableUpload(up handler.Upload) handler.TerminatableUpload {
	switch u := up.(type) {
	case storedUpload:
		return u
	case spoolUpload:
		return cancellableUpload{inner: s.fs.AsTerminatableUpload(u.Upload), s: s, id: u.id}
	}
	return s.fs.AsTerminatableUpload(up)
}

// spoolUpload is an upload in the spool: every chunk written renews its
// reservation, so an upload in use keeps its room for ttl after its last
// request.
type spoolUpload struct {
	handler.Upload
	s  *store
	id string
}

func (u spoolUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	if _, err := u.s.queries.RenewVolumeReservation(ctx, db.RenewVolumeReservationParams{ID: u.id, TtlSeconds: u.s.ttl.Seconds()}); err != nil {
		return 0, fmt.Errorf("renewing the reservation of upload %s: %w", u.id, err)
	}
	return u.Upload.WriteChunk(ctx, offset, src)
}

// cancellableUpload removes the spool of a terminated upload, then releases
// its reservation.
type cancellableUpload struct {
	inner handler.TerminatableUpload
	s     *store
	id    string
}

func (u cancellableUpload) Terminate(ctx context.Context) error {
	if err := u.inner.Terminate(ctx); err != nil {
		return err
	}
	return u.s.cancelled(ctx, u.id)
}

// storedUpload is an upload already in the volume: complete, read-only.
type storedUpload struct{ info handler.FileInfo }

var errStored = handler.NewError("ERR_UPLOAD_STORED", "the upload is complete and stored in the volume", 409)

func (u storedUpload) WriteChunk(context.Context, int64, io.Reader) (int64, error) {
	return 0, errStored
}

func (u storedUpload) GetInfo(context.Context) (handler.FileInfo, error) { return u.info, nil }

func (u storedUpload) GetReader(context.Context) (io.ReadCloser, error) { return nil, errStored }

func (u storedUpload) FinishUpload(context.Context) error { return nil }

// Terminate refuses: the file is in the volume now; delete it there.
func (u storedUpload) Terminate(context.Context) error { return errStored }
