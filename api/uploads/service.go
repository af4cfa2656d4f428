package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	expslog "golang.org/x/exp/slog"

	"github.com/threadbox/threadbox/db"
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
	// MaxSize caps a single upload (tusd answers 413 above it).
	MaxSize int64
	// SpoolTTL is how long an untouched unfinished upload is kept.
	SpoolTTL time.Duration
	Queries  *db.Queries
	Logger   *slog.Logger
	// UserFrom returns the authenticated user of a request context.
	UserFrom func(context.Context) (string, bool)
	// CleanPath validates a destination path and returns its canonical form;
	// its error is reported as 400.
	CleanPath func(string) (string, error)
	// Admit decides whether size more bytes fit the user's quota at creation
	// (an error is answered with Status(err)).
	Admit func(ctx context.Context, user string, size int64) error
	// Push writes a finished upload into the user's volume.
	Push func(ctx context.Context, user, path string, r io.Reader, size int64) error
	// Status maps Admit/Push errors to an HTTP status and code.
	Status func(error) (status int, code, message string)
}

// Service is the tus endpoint plus its janitor.
type Service struct {
	cfg     Config
	handler http.Handler
	stop    context.CancelFunc
	done    chan struct{}
}

// New builds the service and starts its janitor; Close stops it.
func New(cfg Config) (*Service, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload spool %s: %w", cfg.Dir, err)
	}
	if cfg.SpoolTTL <= 0 {
		cfg.SpoolTTL = 24 * time.Hour
	}
	s := &Service{cfg: cfg, done: make(chan struct{})}
	st := &store{fs: filestore.New(cfg.Dir), queries: cfg.Queries, userFrom: cfg.UserFrom}
	composer := handler.NewStoreComposer()
	// Core and termination only: deferred length would bypass the quota
	// check at creation, concatenation is not needed by our clients.
	composer.UseCore(st)
	composer.UseTerminater(st)
	memorylocker.New().UseIn(composer)
	h, err := handler.NewHandler(handler.Config{
		StoreComposer:             composer,
		BasePath:                  cfg.BasePath,
		MaxSize:                   cfg.MaxSize,
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
// behind http.StripPrefix).
func (s *Service) Handler() http.Handler { return s.handler }

// Close stops the janitor.
func (s *Service) Close() {
	s.stop()
	<-s.done
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Service) reject(err error) error {
	status, code, msg := s.cfg.Status(err)
	return handler.NewError(code, msg, status)
}

// preCreate validates a new upload: a known size within the quota and a
// clean destination; it assigns the id and the trusted metadata and records
// the upload.
func (s *Service) preCreate(ev handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	ctx := ev.Context
	user, ok := s.cfg.UserFrom(ctx)
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
	p, err := s.cfg.CleanPath(raw)
	if err != nil {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, s.reject(err)
	}
	if err := s.cfg.Admit(ctx, user, info.Size); err != nil {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, s.reject(err)
	}
	id := newID()
	if err := s.cfg.Queries.CreateUpload(ctx, db.CreateUploadParams{ID: id, UserID: user, Path: p, Size: info.Size}); err != nil {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, fmt.Errorf("recording upload: %w", err)
	}
	meta := handler.MetaData{metaPath: p, metaOwner: user}
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
	s.removeSpool(info)
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "upload push failed", "upload", info.ID, "user", user, "path", p, "err", err)
		return handler.HTTPResponse{}, s.reject(err)
	}
	s.cfg.Logger.InfoContext(ctx, "upload stored", "upload", info.ID, "user", user, "path", p, "size", info.Size)
	return handler.HTTPResponse{Header: handler.HTTPHeader{"Upload-Stored": "true"}}, nil
}

func (s *Service) push(ctx context.Context, user, p string, info handler.FileInfo) error {
	f, err := os.Open(info.Storage["Path"])
	if err != nil {
		return fmt.Errorf("opening spool of %s: %w", info.ID, err)
	}
	defer f.Close()
	return s.cfg.Push(ctx, user, p, f, info.Size)
}

func (s *Service) removeSpool(info handler.FileInfo) {
	for _, k := range []string{"Path", "InfoPath"} {
		if p := info.Storage[k]; p != "" {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.cfg.Logger.Warn("removing upload spool", "path", p, "err", err)
			}
		}
	}
}
