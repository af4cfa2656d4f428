package uploads

import (
	"context"
	"errors"
	"io"

	"github.com/tus/tusd/v2/pkg/handler"
)

// tusd answers an error that is not a handler.Error 500
// ERR_INTERNAL_SERVER_ERROR (500 internal_server_error once rewritten) and
// logs it only to its own logger, which we discard: a PostgreSQL restart
// under an upload (the spool's lock table, the reservation renewed on every
// PATCH) was a 500 with no log line (fault suite at 9b7ac62). Every error the
// store and the locker hand tusd is therefore typed first: a handler.Error
// passes as is, any other gets its status and code from apierr, the one
// place that decides them (503 database_unavailable with Retry-After for an
// outage), and a server fault is logged.

// typed is err as tusd must see it (nil stays nil).
func (s *Service) typed(ctx context.Context, err error) error {
	var he handler.Error
	if err == nil || errors.As(err, &he) {
		return err
	}
	return s.reject(ctx, err)
}

// typedStore is the data store (store) with typed errors.
type typedStore struct {
	inner *store
	s     *Service
}

var (
	_ handler.DataStore           = typedStore{}
	_ handler.TerminaterDataStore = typedStore{}
	_ handler.Upload              = typedUpload{}
	_ handler.TerminatableUpload  = typedTerminatable{}
	_ handler.Locker              = typedLocker{}
	_ handler.Lock                = typedLock{}
)

func (t typedStore) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	up, err := t.inner.NewUpload(ctx, info)
	if err != nil {
		return nil, t.s.typed(ctx, err)
	}
	return typedUpload{Upload: up, s: t.s}, nil
}

func (t typedStore) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	up, err := t.inner.GetUpload(ctx, id)
	if err != nil {
		return nil, t.s.typed(ctx, err)
	}
	return typedUpload{Upload: up, s: t.s}, nil
}

func (t typedStore) AsTerminatableUpload(up handler.Upload) handler.TerminatableUpload {
	if u, ok := up.(typedUpload); ok {
		up = u.Upload
	}
	return typedTerminatable{inner: t.inner.AsTerminatableUpload(up), s: t.s}
}

type typedUpload struct {
	handler.Upload
	s *Service
}

func (u typedUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	n, err := u.Upload.WriteChunk(ctx, offset, src)
	if err != nil && ctx.Err() != nil {
		return n, err // the request is over (its client left): nothing to answer
	}
	return n, u.s.typed(ctx, err)
}

func (u typedUpload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	info, err := u.Upload.GetInfo(ctx)
	return info, u.s.typed(ctx, err)
}

func (u typedUpload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	r, err := u.Upload.GetReader(ctx)
	return r, u.s.typed(ctx, err)
}

func (u typedUpload) FinishUpload(ctx context.Context) error {
	return u.s.typed(ctx, u.Upload.FinishUpload(ctx))
}

type typedTerminatable struct {
	inner handler.TerminatableUpload
	s     *Service
}

func (u typedTerminatable) Terminate(ctx context.Context) error {
	return u.s.typed(ctx, u.inner.Terminate(ctx))
}

// typedLocker is the spool's locker with typed errors.
type typedLocker struct {
	inner handler.Locker
	s     *Service
}

func (l typedLocker) NewLock(id string) (handler.Lock, error) {
	k, err := l.inner.NewLock(id)
	if err != nil {
		return nil, l.s.typed(context.Background(), err)
	}
	return typedLock{inner: k, s: l.s}, nil
}

type typedLock struct {
	inner handler.Lock
	s     *Service
}

func (k typedLock) Lock(ctx context.Context, requestUnlock func()) error {
	return k.s.typed(ctx, k.inner.Lock(ctx, requestUnlock))
}

func (k typedLock) Unlock() error {
	return k.s.typed(context.Background(), k.inner.Unlock())
}
