package uploads

import (
	"context"
	"errors"
	"io"
	"regexp"

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

// store wraps the spool with the owner check and the "finished" view of
// uploads already pushed into the volume.
type store struct {
	fs      uploadspool.Spool
	queries *db.Queries
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
		return up, nil
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
	if st, ok := up.(storedUpload); ok {
		return st
	}
	return s.fs.AsTerminatableUpload(up)
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
