// Package uploadspool is where the bytes of tus uploads wait until they are
// pushed into a user's volume, and the lock of each upload.
//
// Two spools, one interface:
//   - Local: a directory (tusd's filestore) and an in-process lock. One
//     machine needs no other service; `make run` uses it. With several
//     replicas every request of an upload must reach the same one.
//   - S3: a bucket of an S3-compatible store (tusd's s3store: the bytes as
//     a multipart upload, its metadata beside them) and the locks in
//     PostgreSQL (Locker). Every replica reaches both, so an upload started
//     on one replica is resumed and finished on any other. A Daytona
//     installation already runs one (MinIO holds its volumes).
//
// Upload ids are threadbox's own (the create hook assigns them); the S3
// spool keeps the bucket's key of each, which embeds the multipart upload id,
// in PostgreSQL, so URLs never depend on the store.
package uploadspool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
)

// Spool stores uploads in progress for tusd. Uploads keep the ids they are
// created with; GetUpload of an unknown (or removed) id is
// handler.ErrNotFound.
type Spool interface {
	handler.DataStore
	handler.TerminaterDataStore
	// Locker serialises the requests of one upload.
	Locker() handler.Locker
	// Open reads a finished upload's bytes from the start.
	Open(ctx context.Context, id string) (io.ReadCloser, error)
	// Remove drops an upload's bytes and metadata; an unknown id is not an
	// error.
	Remove(ctx context.Context, id string) error
	// Stale lists the uploads that received no bytes since before.
	Stale(ctx context.Context, before time.Time) ([]string, error)
	// Close stops background work.
	Close()
}

// Local is the spool in a directory of this machine.
type Local struct {
	filestore.FileStore
	dir    string
	locker *memorylocker.MemoryLocker
}

var _ Spool = (*Local)(nil)

// NewLocal spools into dir (created when missing). The directory must
// survive restarts for uploads to resume across them.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload spool %s: %w", dir, err)
	}
	return &Local{FileStore: filestore.New(dir), dir: dir, locker: memorylocker.New()}, nil
}

// Locker implements Spool: in memory, for this process.
func (s *Local) Locker() handler.Locker { return s.locker }

// Open implements Spool.
func (s *Local) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	up, err := s.GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return up.GetReader(ctx)
}

// Remove implements Spool.
func (s *Local) Remove(_ context.Context, id string) error {
	var errs []error
	for _, p := range []string{filepath.Join(s.dir, id), filepath.Join(s.dir, id+".info")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stale implements Spool: an upload's idle time is its files' modification
// time.
func (s *Local) Stale(_ context.Context, before time.Time) ([]string, error) {
	infos, err := filepath.Glob(filepath.Join(s.dir, "*.info"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, info := range infos {
		id := strings.TrimSuffix(filepath.Base(info), ".info")
		last := modTime(info)
		if m := modTime(filepath.Join(s.dir, id)); m.After(last) {
			last = m
		}
		if !last.IsZero() && last.Before(before) {
			out = append(out, id)
		}
	}
	return out, nil
}

// Close implements Spool.
func (s *Local) Close() {}

func modTime(p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
