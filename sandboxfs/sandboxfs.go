// Package sandboxfs is a file view of one sandbox through its toolbox, with
// errors a client can act on.
//
// Daytona's toolbox daemon answers every /files failure with a bare status
// and an empty body (docs: ../shared/notes/daytona-daemon-facts.md): 404 for
// a missing path, 409 for a move onto an existing one, and 400 for everything
// else — a directory where a file was expected, a file in the middle of a
// path, a bad name. So the reason is never read from Daytona's text: a 400 is
// explained by stat-ing the paths involved (only on that error path), and
// every failure about the client's files comes back as an *Error whose Kind
// says what happened (fs.ErrNotExist, fs.ErrExist, ErrIsDir, ErrNotDir, or
// ErrRefused when the stat explains nothing).
//
// Failures that are not about the files — the sandbox stopped, Daytona
// unreachable, rate limited — are returned as the gateway's errors, and an
// *Error also unwraps to the toolbox's error, so the sandbox client can still
// tell "your file is missing" from "your sandbox is gone".
package sandboxfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/internal/shell"
)

// Toolbox is the part of a sandbox's toolbox API file operations need;
// *daytona.Toolbox implements it.
type Toolbox interface {
	List(ctx context.Context, dir string) ([]daytona.FileInfo, error)
	Stat(ctx context.Context, path string) (daytona.FileInfo, error)
	Download(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error)
	Upload(ctx context.Context, path string, r io.Reader) error
	Delete(ctx context.Context, path string, recursive bool) error
	Move(ctx context.Context, from, to string) error
	Mkdir(ctx context.Context, path string) error
	Exec(ctx context.Context, r daytona.ExecRequest) (daytona.ExecResult, error)
}

var _ Toolbox = (*daytona.Toolbox)(nil)

// Error kinds besides fs.ErrNotExist and fs.ErrExist.
var (
	ErrIsDir   = errors.New("is a directory")
	ErrNotDir  = errors.New("not a directory")
	ErrRefused = errors.New("the sandbox refused the operation")
	// ErrNotEmpty is a directory that must be empty for the operation.
	ErrNotEmpty = errors.New("directory not empty")
)

// Error is a failed operation on a client's file. Path is the path the caller
// named (relative to the FS's root), safe to show the client; Err is the
// toolbox's error, for the log.
type Error struct {
	Op   string
	Path string
	Kind error
	Err  error
}

func (e *Error) Error() string {
	s := e.Op + " " + e.Path + ": " + e.Kind.Error()
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

// Unwrap exposes the kind and the toolbox's error to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// FS is a sandbox's files under Root: paths given to its methods are clean
// and absolute ("/a/b", "/" for Root itself) and name Root+path in the
// sandbox. Root is "/" for a thread's whole sandbox and the volume's mount
// path for the files routes, so errors name paths as the client does.
type FS struct {
	TB   Toolbox
	Root string
}

// Abs is the sandbox path of p.
func (f FS) Abs(p string) string {
	if p == "/" || p == "" {
		return f.Root
	}
	if f.Root == "/" {
		return p
	}
	return f.Root + p
}

// fileErr classifies a toolbox error about op on p. explain runs only for a
// 400 and returns the kind a stat finds (nil: unexplained).
func (f FS) fileErr(op, p string, err error, explain func() error) error {
	if err == nil {
		return nil
	}
	var kind error
	switch {
	case errors.Is(err, daytona.ErrNotFound):
		kind = fs.ErrNotExist
	case errors.Is(err, daytona.ErrConflict):
		kind = fs.ErrExist
	case errors.Is(err, daytona.ErrBadRequest):
		if explain != nil {
			kind = explain()
		}
		if kind == nil {
			kind = ErrRefused
		}
	default:
		return err // the sandbox or Daytona, not the file
	}
	return &Error{Op: op, Path: p, Kind: kind, Err: err}
}

// stat is a best-effort stat for explaining an error: ok false when p cannot
// be seen.
func (f FS) stat(ctx context.Context, p string) (daytona.FileInfo, bool) {
	fi, err := f.TB.Stat(ctx, f.Abs(p))
	return fi, err == nil
}

// fileInPath returns ErrNotDir when an ancestor of p (inside Root) is a file:
// the usual reason a create or a stat under it is refused.
func (f FS) fileInPath(ctx context.Context, p string) error {
	for dir := path.Dir(p); dir != "/" && dir != "."; dir = path.Dir(dir) {
		if fi, ok := f.stat(ctx, dir); ok {
			if !fi.IsDir {
				return ErrNotDir
			}
			return nil
		}
	}
	return nil
}

// Stat describes p.
func (f FS) Stat(ctx context.Context, p string) (daytona.FileInfo, error) {
	fi, err := f.TB.Stat(ctx, f.Abs(p))
	if err != nil {
		return daytona.FileInfo{}, f.fileErr("stat", p, err, func() error { return f.fileInPath(ctx, p) })
	}
	return fi, nil
}

// List returns the entries of directory p.
func (f FS) List(ctx context.Context, p string) ([]daytona.FileInfo, error) {
	list, err := f.TB.List(ctx, f.Abs(p))
	if err != nil {
		return nil, f.fileErr("list", p, err, func() error {
			if fi, ok := f.stat(ctx, p); ok && !fi.IsDir {
				return ErrNotDir
			}
			return f.fileInPath(ctx, p)
		})
	}
	return list, nil
}

// Download streams length bytes of p from offset (length < 0: to the end).
func (f FS) Download(ctx context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	r, err := f.TB.Download(ctx, f.Abs(p), offset, length)
	if err != nil {
		return nil, f.fileErr("read", p, err, func() error { return f.dirOrFileInPath(ctx, p) })
	}
	return r, nil
}

// dirOrFileInPath explains a refused write or read of p: p is a directory,
// or something on its way is a file.
func (f FS) dirOrFileInPath(ctx context.Context, p string) error {
	if fi, ok := f.stat(ctx, p); ok && fi.IsDir {
		return ErrIsDir
	}
	return f.fileInPath(ctx, p)
}

// Upload writes r to p, creating missing parents and replacing a file.
func (f FS) Upload(ctx context.Context, p string, r io.Reader) error {
	return f.fileErr("write", p, f.TB.Upload(ctx, f.Abs(p), r), func() error { return f.dirOrFileInPath(ctx, p) })
}

// Delete removes p; a directory only with recursive (Daytona refuses a
// directory without it, empty or not: the caller decides how to remove an
// empty one, see RemoveEmptyDir).
func (f FS) Delete(ctx context.Context, p string, recursive bool) error {
	return f.fileErr("delete", p, f.TB.Delete(ctx, f.Abs(p), recursive), func() error {
		if fi, ok := f.stat(ctx, p); ok && fi.IsDir && !recursive {
			return ErrIsDir
		}
		return nil
	})
}

// Move renames from to to; Daytona never overwrites (fs.ErrExist), and a
// missing source or destination parent is fs.ErrNotExist.
func (f FS) Move(ctx context.Context, from, to string) error {
	err := f.fileErr("move", from, f.TB.Move(ctx, f.Abs(from), f.Abs(to)), func() error {
		if _, ok := f.stat(ctx, to); ok {
			return fs.ErrExist
		}
		return f.fileInPath(ctx, to)
	})
	var fe *Error
	if errors.As(err, &fe) && errors.Is(fe.Kind, fs.ErrExist) {
		fe.Path = to // the destination is what exists
	}
	return err
}

// Mkdir creates directory p and its parents (an existing directory is fine).
func (f FS) Mkdir(ctx context.Context, p string) error {
	return f.fileErr("mkdir", p, f.TB.Mkdir(ctx, f.Abs(p)), func() error {
		if fi, ok := f.stat(ctx, p); ok && !fi.IsDir {
			return fs.ErrExist
		}
		return f.fileInPath(ctx, p)
	})
}

// RemoveEmptyDir removes directory p only if it is empty, atomically in the
// sandbox (rmdir(2)), so nothing written into it meanwhile — another
// client's file, an upload's spool — can be lost. Daytona's delete cannot do
// this: without recursive it refuses every directory.
func (f FS) RemoveEmptyDir(ctx context.Context, p string) error {
	res, err := f.TB.Exec(ctx, daytona.ExecRequest{Command: "rmdir -- " + shell.Quote(f.Abs(p)), Timeout: rmdirTimeout})
	if err != nil {
		return err
	}
	if res.ExitCode == 0 {
		return nil
	}
	kind := ErrNotEmpty
	switch fi, ok := f.stat(ctx, p); {
	case !ok:
		kind = fs.ErrNotExist
	case !fi.IsDir:
		kind = ErrNotDir
	}
	return &Error{Op: "delete", Path: p, Kind: kind}
}

// rmdirTimeout bounds RemoveEmptyDir's command.
const rmdirTimeout = 30 * time.Second
