package dav

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/threadbox/threadbox/daytona"
)

// Toolbox is the part of the files sandbox's toolbox API the volume needs.
// *daytona.Toolbox implements it; errors carry daytona's kinds
// (daytona.ErrNotFound, daytona.ErrConflict, ...).
type Toolbox interface {
	List(ctx context.Context, dir string) ([]daytona.FileInfo, error)
	Stat(ctx context.Context, path string) (daytona.FileInfo, error)
	Download(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error)
	Upload(ctx context.Context, path string, r io.Reader) error
	Delete(ctx context.Context, path string, recursive bool) error
	Move(ctx context.Context, from, to string) error
	Mkdir(ctx context.Context, path string) error
}

var _ Toolbox = (*daytona.Toolbox)(nil)

// pathErr maps a sandbox error onto the *os.PathError shapes x/net/webdav
// understands: it tests with os.IsNotExist / os.IsExist, which do not follow
// errors.Is chains through foreign types, so the os sentinel must be the
// PathError's direct Err. Other errors keep their cause for the wrapper,
// which turns them into 502/503 instead of the engine's generic 405/500.
func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if pe, ok := err.(*os.PathError); ok { // already mapped (not a wrapped foreign one)
		return pe
	}
	switch {
	case errors.Is(err, daytona.ErrNotFound):
		return &os.PathError{Op: op, Path: name, Err: os.ErrNotExist}
	case errors.Is(err, daytona.ErrConflict):
		return &os.PathError{Op: op, Path: name, Err: os.ErrExist}
	}
	return &os.PathError{Op: op, Path: name, Err: err}
}
