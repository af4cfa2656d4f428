// Package davtest holds test helpers for the files area: a dav.Toolbox over a
// local directory (so the WebDAV engine can be tested without a sandbox) and
// a litmus runner that compares per-test results with a committed baseline.
package davtest

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync/atomic"

	"github.com/threadbox/threadbox/daytona"
)

// LocalToolbox implements dav.Toolbox over a host directory that stands for
// the sandbox's filesystem root, with the daemon's semantics: Upload creates
// parents, Move never overwrites (ErrConflict), Delete of a directory needs
// recursive. It counts calls so tests can assert how many listings a request
// made.
type LocalToolbox struct {
	Dir string

	Lists, Stats, Downloads, Uploads atomic.Int64
}

func (l *LocalToolbox) host(p string) string {
	return filepath.Join(l.Dir, filepath.FromSlash(path.Clean("/"+p)))
}

func notFound(op string, err error) error {
	return &daytona.Error{Kind: daytona.ErrNotFound, Op: op, Status: 404, Err: err}
}

func mapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return notFound(op, err)
	case errors.Is(err, fs.ErrExist):
		return &daytona.Error{Kind: daytona.ErrConflict, Op: op, Status: 409, Err: err}
	}
	return &daytona.Error{Kind: daytona.ErrBadRequest, Op: op, Status: 400, Err: err}
}

func info(name string, fi os.FileInfo) daytona.FileInfo {
	return daytona.FileInfo{Name: name, Size: fi.Size(), IsDir: fi.IsDir(), Mode: fi.Mode().String(), ModTime: fi.ModTime()}
}

// List implements dav.Toolbox.
func (l *LocalToolbox) List(_ context.Context, dir string) ([]daytona.FileInfo, error) {
	l.Lists.Add(1)
	ents, err := os.ReadDir(l.host(dir))
	if err != nil {
		return nil, mapErr("list", err)
	}
	out := make([]daytona.FileInfo, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, info(e.Name(), fi))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Stat implements dav.Toolbox.
func (l *LocalToolbox) Stat(_ context.Context, p string) (daytona.FileInfo, error) {
	l.Stats.Add(1)
	fi, err := os.Stat(l.host(p))
	if err != nil {
		return daytona.FileInfo{}, mapErr("stat", err)
	}
	return info(path.Base(p), fi), nil
}

// Download implements dav.Toolbox.
func (l *LocalToolbox) Download(_ context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	l.Downloads.Add(1)
	f, err := os.Open(l.host(p))
	if err != nil {
		return nil, mapErr("download", err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, mapErr("download", err)
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// Upload implements dav.Toolbox. Like the daemon, a failing source leaves
// what was received so far on disk.
func (l *LocalToolbox) Upload(_ context.Context, p string, r io.Reader) error {
	l.Uploads.Add(1)
	h := l.host(p)
	if err := os.MkdirAll(filepath.Dir(h), 0o755); err != nil {
		return mapErr("upload", err)
	}
	f, err := os.Create(h)
	if err != nil {
		return mapErr("upload", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return &daytona.Error{Kind: daytona.ErrBadRequest, Op: "upload", Message: "reading the upload source failed", Err: err}
	}
	return mapErr("upload", f.Close())
}

// Delete implements dav.Toolbox.
func (l *LocalToolbox) Delete(_ context.Context, p string, recursive bool) error {
	h := l.host(p)
	fi, err := os.Stat(h)
	if err != nil {
		return mapErr("delete", err)
	}
	if fi.IsDir() {
		if !recursive {
			return &daytona.Error{Kind: daytona.ErrBadRequest, Op: "delete", Message: "is a directory"}
		}
		return mapErr("delete", os.RemoveAll(h))
	}
	return mapErr("delete", os.Remove(h))
}

// Move implements dav.Toolbox.
func (l *LocalToolbox) Move(_ context.Context, from, to string) error {
	if _, err := os.Stat(l.host(from)); err != nil {
		return mapErr("move", err)
	}
	if _, err := os.Lstat(l.host(to)); err == nil {
		return mapErr("move", fs.ErrExist)
	}
	return mapErr("move", os.Rename(l.host(from), l.host(to)))
}

// Mkdir implements dav.Toolbox.
func (l *LocalToolbox) Mkdir(_ context.Context, p string) error {
	return mapErr("mkdir", os.MkdirAll(l.host(p), 0o755))
}

// DiskUsage sums the sizes of the regular files under dir (what `du -sb`
// reports, minus directory blocks), for the quota's Measure in tests.
func DiskUsage(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
