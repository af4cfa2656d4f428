package dav

import (
	"errors"
	"io/fs"
	"os"

	"github.com/threadbox/threadbox/sandboxfs"
)

// osErr gives "missing" and "exists" the *os.PathError shape x/net/webdav
// understands: it tests with os.IsNotExist / os.IsExist, which look only at
// a PathError's direct Err and follow no errors.Is chain. Every other error
// keeps its type, so the failure answer (apierr) can name it precisely.
func osErr(err error) error {
	var fe *sandboxfs.Error
	if !errors.As(err, &fe) {
		return err
	}
	switch {
	case errors.Is(fe.Kind, fs.ErrNotExist):
		return &os.PathError{Op: fe.Op, Path: fe.Path, Err: os.ErrNotExist}
	case errors.Is(fe.Kind, fs.ErrExist):
		return &os.PathError{Op: fe.Op, Path: fe.Path, Err: os.ErrExist}
	}
	return err
}
