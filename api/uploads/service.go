package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
	expslog "golang.org/x/exp/slog"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/uploadspool"
	"github.com/threadbox/threadbox/volume"
)

// Upload states of the uploads table.
const (
	stateReceiving = "receiving"
	stateStored    = "stored"
	stateFailed    = "failed"
)

// pushTimeout bounds the push of a finished upload into the volume. The push
// runs detached from the request, so a client that disconnects while it runs
// still gets its file stored (and learns so with HEAD).
const pushTimeout = 2 * time.Hour

// Config wires the upload service to the rest of the API.
type Config struct {
	// Dir is the spool directory (Config.UploadDir); it must survive restarts
	// for uploads to resume across them.
	Dir string
	// BasePath is the URL path the handler is mounted at, e.g. "/v1/uploads/".
	BasePath string
	// QuotaBytes is the per-user volume quota: no upload may be larger, and
	// uploads still receiving reserve their size against it.
	QuotaBytes int64
	// SpoolTTL is how long an untouched unfinished upload is kept.
	SpoolTTL time.Duration
	Queries  *db.Queries
	Logger   *slog.Logger
	// Volumes opens the owner's volume to check room at creation and to push
	// a finished upload into it.
	Volumes volume.Opener
	// Spool holds uploads in progress and their locks: nil spools into Dir
	// (one machine), an S3 spool lets every replica resume every upload.
	Spool uploadspool.Spool
}

// Service is the tus endpoint plus its janitor.
type Service struct {
	cfg     Config
	spool   uploadspool.Spool
	handler http.Handler
	stop    context.CancelFunc
	done    chan struct{}
}

// New builds the service and starts its janitor; Close stops it.
func New(cfg Config) (*Service, error) {
	if cfg.SpoolTTL <= 0 {
		cfg.SpoolTTL = 24 * time.Hour
	}
	spool := cfg.Spool
	if spool == nil {
		local, err := uploadspool.NewLocal(cfg.Dir)
		if err != nil {
			return nil, err
		}
		spool = local
	}
	s := &Service{cfg: cfg, spool: spool, done: make(chan struct{})}
	st := &store{fs: spool, queries: cfg.Queries}
	composer := handler.NewStoreComposer()
	// Core and termination only: deferred length would bypass the quota
	// check at creation, concatenation is not needed by our clients.
	composer.UseCore(st)
	composer.UseTerminater(st)
	composer.UseLocker(spool.Locker())
	h, err := handler.NewHandler(handler.Config{
		StoreComposer:             composer,
		BasePath:                  cfg.BasePath,
		MaxSize:                   cfg.QuotaBytes,
		DisableDownload:           true,
		DisableConcatenation:      true,
		Cors:                      &handler.CorsConfig{Disable: true},
		Logger:                    expslog.New(expslog.NewTextHandler(io.Discard, nil)), // tusd wants x/exp/slog; we log ourselves
		PreUploadCreateCallback:   s.preCreate,
		PreFinishResponseCallback: s.preFinish,
	})
	if err != nil {
		return nil, fmt.Errorf("tus handler: %w", err)
	}
	s.handler = h
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.janitor(ctx)
	return s, nil
}

// Handler serves requests whose path is relative to BasePath (mount it
// behind http.StripPrefix). tusd's plain-text errors are rewritten into the
// API's JSON error shape.
func (s *Service) Handler() http.Handler { return jsonErrors(s.handler) }

// Close stops the janitor and the spool's background work.
func (s *Service) Close() {
	s.stop()
	<-s.done
	s.spool.Close()
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// reject answers err with the status and code apierr gives it.
func (s *Service) reject(ctx context.Context, err error) error {
	e := apierr.Classify(err)
	if apierr.ServerFault(e) {
		s.cfg.Logger.ErrorContext(ctx, "upload failed", "status", e.Status, "code", e.Code, "err", err)
	}
	return handler.NewError(e.Code, e.Message, e.Status)
}

// destination validates the client's destination path (a file in the volume).
func destination(raw string) (string, error) {
	p, err := clientpath.Volume(raw)
	if err == nil && p == "/" {
		err = apierr.InvalidPath("the destination must be a file in the volume")
	}
	return p, err
}

// admit checks that size more bytes fit the user's quota, counting the
// uploads still receiving (they reserve their size).
func (s *Service) admit(ctx context.Context, user string, size int64) error {
	if size > s.cfg.QuotaBytes {
		return apierr.TooLarge("the upload is larger than the whole volume quota")
	}
	pending, err := s.cfg.Queries.ReceivingUploadBytes(ctx, user)
	if err != nil {
		return fmt.Errorf("reading pending uploads: %w", err)
	}
	return s.cfg.Volumes.Use(ctx, user, volume.UseOptions{}, func(ctx context.Context, v *volume.Volume) error {
		return v.Quota.Check(ctx, size+pending, 0)
	})
}

// preCreate validates a new upload: a known size within the quota and a
// clean destination; it assigns the id and the trusted metadata and records
// the upload.
func (s *Service) preCreate(ev handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	ctx := ev.Context
	p, ok := auth.PrincipalFrom(ctx)
	user := p.UserID
	if !ok {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, handler.NewError("ERR_UNAUTHORIZED", "missing api key", http.StatusUnauthorized)
	}
	info := ev.Upload
	if info.SizeIsDeferred {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, handler.NewError("ERR_LENGTH_REQUIRED", "Upload-Length is required", http.StatusBadRequest)
	}
	raw, ok := info.MetaData[metaPath]
	if !ok || raw == "" {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, handler.NewError("ERR_INVALID_PATH", "metadata \"path\" (the destination in the volume) is required", http.StatusBadRequest)
	}
	dst, err := destination(raw)
	if err != nil {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, s.reject(ctx, err)
	}
	if err := s.admit(ctx, user, info.Size); err != nil {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, s.reject(ctx, err)
	}
	id := newID()
	if err := s.cfg.Queries.CreateUpload(ctx, db.CreateUploadParams{ID: id, UserID: user, Path: dst, Size: info.Size}); err != nil {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, fmt.Errorf("recording upload: %w", err)
	}
	meta := handler.MetaData{metaPath: dst, metaOwner: user}
	if name, ok := info.MetaData[metaName]; ok {
		meta[metaName] = name
	}
	return handler.HTTPResponse{}, handler.FileInfoChanges{ID: id, MetaData: meta}, nil
}

// preFinish pushes the finished spool into the volume before tusd answers
// the last PATCH, records it as stored and removes the spool. On failure the
// spool is removed too and the upload marked failed (HEAD then says 404), so
// the client starts over instead of believing a half-done upload.
func (s *Service) preFinish(ev handler.HookEvent) (handler.HTTPResponse, error) {
	info := ev.Upload
	user, p := info.MetaData[metaOwner], info.MetaData[metaPath]
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ev.Context), pushTimeout)
	defer cancel()
	err := s.push(ctx, user, p, info)
	state := stateStored
	if err != nil {
		state = stateFailed
	}
	if derr := s.cfg.Queries.SetUploadState(ctx, db.SetUploadStateParams{ID: info.ID, State: state}); derr != nil && err == nil {
		err = fmt.Errorf("recording upload %s: %w", info.ID, derr)
	}
	if rerr := s.spool.Remove(ctx, info.ID); rerr != nil {
		s.cfg.Logger.WarnContext(ctx, "removing upload spool", "upload", info.ID, "err", rerr)
	}
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "upload push failed", "upload", info.ID, "user", user, "path", p, "err", err)
		return handler.HTTPResponse{}, s.reject(ctx, err)
	}
	s.cfg.Logger.InfoContext(ctx, "upload stored", "upload", info.ID, "user", user, "path", p, "size", info.Size)
	return handler.HTTPResponse{Header: handler.HTTPHeader{"Upload-Stored": "true"}}, nil
}

// push copies the finished upload from the spool into the volume; a retry
// (the files sandbox was found stopped) reads the spool again from the start.
func (s *Service) push(ctx context.Context, user, p string, info handler.FileInfo) error {
	return s.cfg.Volumes.Use(ctx, user, volume.UseOptions{}, func(ctx context.Context, v *volume.Volume) error {
		r, err := s.spool.Open(ctx, info.ID)
		if err != nil {
			return fmt.Errorf("opening spool of %s: %w", info.ID, err)
		}
		defer r.Close()
		_, err = v.Put(ctx, p, r, info.Size)
		return err
	})
}
