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
	// SpoolTTL is how long an untouched unfinished upload is kept (and its
	// room reserved).
	SpoolTTL time.Duration
	// PushAttempts bounds the tries of pushing a finished upload into the
	// volume within one request (a transient failure is retried after
	// PushBackoff, doubling); default 3 and 1s. After that the spool is
	// kept, and the client's next HEAD or PATCH tries again.
	PushAttempts int
	PushBackoff  time.Duration
	Queries      *db.Queries
	Logger       *slog.Logger
	// Volumes opens the owner's volume to reserve room at creation and to
	// push a finished upload into it.
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
	if cfg.PushAttempts <= 0 {
		cfg.PushAttempts = 3
	}
	if cfg.PushBackoff <= 0 {
		cfg.PushBackoff = time.Second
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
	st := &store{fs: spool, queries: cfg.Queries, ttl: cfg.SpoolTTL, finish: s.finish, cancelled: s.cancelled}
	composer := handler.NewStoreComposer()
	// Core and termination only: deferred length would bypass the quota
	// check at creation, concatenation is not needed by our clients.
	typed := typedStore{inner: st, s: s}
	composer.UseCore(typed)
	composer.UseTerminater(typed)
	composer.UseLocker(typedLocker{inner: spool.Locker(), s: s})
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
func (s *Service) Handler() http.Handler {
	return jsonErrors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handler.ServeHTTP(w, r.WithContext(withMethod(r.Context(), r.Method)))
	}))
}

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
	he := handler.NewError(e.Code, e.Message, e.Status)
	if e.RetryAfter > 0 { // 503 and 429 say when to come back, as apierr.Write does
		he.HTTPResponse.Header["Retry-After"] = apierr.RetryAfterValue(e.RetryAfter)
	}
	return he
}

// destination validates the client's destination path (a file in the volume).
func destination(raw string) (string, error) {
	p, err := clientpath.Volume(raw)
	if err == nil && p == "/" {
		err = apierr.InvalidPath("the destination must be a file in the volume")
	}
	return p, err
}

// reserve claims size bytes of the user's quota for the upload id, for as
// long as the upload may be resumed (SpoolTTL after its last request).
func (s *Service) reserve(ctx context.Context, user, id string, size int64) error {
	if size > s.cfg.QuotaBytes {
		return apierr.TooLarge("the upload is larger than the whole volume quota")
	}
	return s.cfg.Volumes.Use(ctx, user, volume.UseOptions{}, func(ctx context.Context, v *volume.Volume) error {
		_, err := v.Quota.Reserve(ctx, volume.ReserveOptions{ID: id, Need: size, Want: size, TTL: s.cfg.SpoolTTL})
		return err
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
	id := newID()
	if err := s.reserve(ctx, user, id, info.Size); err != nil {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, s.reject(ctx, err)
	}
	if err := s.cfg.Queries.CreateUpload(ctx, db.CreateUploadParams{ID: id, UserID: user, Path: dst, Size: info.Size}); err != nil {
		_ = s.cfg.Queries.DeleteVolumeReservation(context.WithoutCancel(ctx), id)
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, s.reject(ctx, fmt.Errorf("recording upload: %w", err))
	}
	meta := handler.MetaData{metaPath: dst, metaOwner: user}
	if name, ok := info.MetaData[metaName]; ok {
		meta[metaName] = name
	}
	return handler.HTTPResponse{}, handler.FileInfoChanges{ID: id, MetaData: meta}, nil
}

// preFinish pushes the finished spool into the volume before tusd answers
// the last PATCH (see finish). When the push fails the answer is its error,
// and the upload stays complete in the spool with its room reserved: the
// client's next HEAD or PATCH (tus clients retry 5xx) pushes it again.
func (s *Service) preFinish(ev handler.HookEvent) (handler.HTTPResponse, error) {
	if err := s.finish(ev.Context, ev.Upload); err != nil {
		return handler.HTTPResponse{}, s.reject(ev.Context, err)
	}
	return handler.HTTPResponse{Header: handler.HTTPHeader{"Upload-Stored": "true"}}, nil
}

// finish pushes a complete upload into the volume, retrying transient
// failures (PushAttempts, with backoff), then records it as stored and
// removes it from the spool. It runs detached from the request, so a client
// that disconnects meanwhile still gets its file stored (and learns so with
// HEAD). On failure the spool and the reservation stay for the next try.
func (s *Service) finish(ctx context.Context, info handler.FileInfo) error {
	user, p := info.MetaData[metaOwner], info.MetaData[metaPath]
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
	defer cancel()
	attempts := 0
	err := volume.Retry(ctx, s.cfg.PushAttempts, s.cfg.PushBackoff,
		func(err error) bool { return apierr.ServerFault(apierr.Classify(err)) },
		func() error { attempts++; return s.push(ctx, user, p, info) })
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "upload push failed; the spool is kept for the next try",
			"upload", info.ID, "user", user, "path", p, "attempts", attempts, "err", err)
		return err
	}
	if err := s.cfg.Queries.SetUploadState(ctx, db.SetUploadStateParams{ID: info.ID, State: stateStored}); err != nil {
		return fmt.Errorf("recording upload %s: %w", info.ID, err)
	}
	if err := s.spool.Remove(ctx, info.ID); err != nil {
		s.cfg.Logger.WarnContext(ctx, "removing upload spool", "upload", info.ID, "err", err)
	}
	s.cfg.Logger.InfoContext(ctx, "upload stored", "upload", info.ID, "user", user, "path", p, "size", info.Size)
	return nil
}

// push copies the finished upload from the spool into the volume under the
// upload's reservation; a retry (the files sandbox was found stopped) reads
// the spool again from the start.
func (s *Service) push(ctx context.Context, user, p string, info handler.FileInfo) error {
	return s.cfg.Volumes.Use(ctx, user, volume.UseOptions{}, func(ctx context.Context, v *volume.Volume) error {
		r, err := s.spool.Open(ctx, info.ID)
		if err != nil {
			return fmt.Errorf("opening spool of %s: %w", info.ID, err)
		}
		defer r.Close()
		_, err = v.PutReserved(ctx, p, r, info.Size, info.ID)
		return err
	})
}

// cancelled ends an upload its client terminated (tus DELETE), or the
// janitor dropped: its room is released and it is recorded as failed.
func (s *Service) cancelled(ctx context.Context, id string) error {
	ctx = context.WithoutCancel(ctx)
	if err := s.cfg.Queries.DeleteVolumeReservation(ctx, id); err != nil {
		return fmt.Errorf("releasing upload %s: %w", id, err)
	}
	if err := s.cfg.Queries.SetUploadState(ctx, db.SetUploadStateParams{ID: id, State: stateFailed}); err != nil {
		return fmt.Errorf("recording upload %s: %w", id, err)
	}
	return nil
}
