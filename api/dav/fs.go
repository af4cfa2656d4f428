package dav

import (
	"context"
	"errors"
	"os"
	"path"
	"sync"

	"golang.org/x/net/webdav"

	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/sandboxfs"
	"github.com/threadbox/threadbox/volume"
)

// FS is a webdav.FileSystem over a Volume for one request: it carries the
// request's stat cache and dead-property cache, so build one per request
// (it is cheap) and never share it between requests.
type FS struct {
	V *volume.Volume

	cache statCache

	mu        sync.Mutex
	props     map[string]propMap // loaded dead properties by path (nil map: none)
	quota     propMap
	firstErr  error // first failure that is not "exists/not exists", for the wrapper
	quotaDone bool
}

var _ webdav.FileSystem = (*FS)(nil)

// NewFS returns a request-scoped FileSystem over v.
func NewFS(v *volume.Volume) *FS { return &FS{V: v} }

// Err is the first sandbox, quota or database failure this request hit. The
// engine flattens such failures into 405/403/500; the wrapper uses Err to
// answer 507, 502 or 503 instead.
func (fs *FS) Err() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.firstErr
}

// note records err (when it is a real failure) and returns it unchanged.
func (fs *FS) note(err error) error {
	if err == nil || os.IsNotExist(err) || os.IsExist(err) {
		return err
	}
	fs.mu.Lock()
	if fs.firstErr == nil {
		fs.firstErr = err
	}
	fs.mu.Unlock()
	return err
}

// noteWrite records the failure of a write whatever it is: unlike a lookup,
// a write whose directory vanished under it (a DELETE of the collection
// while it streamed) has failed, and the engine would flatten that into 405.
func (fs *FS) noteWrite(err error) error {
	if err == nil {
		return nil
	}
	fs.mu.Lock()
	if fs.firstErr == nil {
		fs.firstErr = err
	}
	fs.mu.Unlock()
	return err
}

func (fs *FS) clean(op, name string) (string, error) {
	n, err := clientpath.Volume(name)
	if err != nil {
		return "", fs.note(&os.PathError{Op: op, Path: name, Err: err})
	}
	return n, nil
}

// stat answers from the request cache or asks the sandbox once.
func (fs *FS) stat(ctx context.Context, n string) (daytona.FileInfo, error) {
	if e, ok := fs.cache.get(n); ok {
		if e.missing {
			return daytona.FileInfo{}, &os.PathError{Op: "stat", Path: n, Err: os.ErrNotExist}
		}
		return e.fi, nil
	}
	fi, err := fs.V.Stat(ctx, n)
	err = osErr(err)
	switch {
	case os.IsNotExist(err):
		fs.cache.put(n, statEntry{missing: true})
		return daytona.FileInfo{}, err
	case err != nil:
		return daytona.FileInfo{}, fs.note(err)
	}
	fs.cache.put(n, statEntry{fi: fi})
	return fi, nil
}

// Stat implements webdav.FileSystem.
func (fs *FS) Stat(ctx context.Context, name string) (os.FileInfo, error) {
	n, err := fs.clean("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := fs.stat(ctx, n)
	if err != nil {
		return nil, err
	}
	return newFileInfo(n, fi), nil
}

// parentDir checks that n's parent is an existing directory (RFC 4918: a
// missing parent is 409, which the engine derives from os.ErrNotExist).
func (fs *FS) parentDir(ctx context.Context, op, n string) error {
	if n == "/" {
		return nil
	}
	pfi, err := fs.stat(ctx, path.Dir(n))
	if err != nil {
		return err
	}
	if !pfi.IsDir {
		return &os.PathError{Op: op, Path: n, Err: os.ErrNotExist}
	}
	return nil
}

// Mkdir implements webdav.FileSystem: one level only, like mkdir(2).
func (fs *FS) Mkdir(ctx context.Context, name string, _ os.FileMode) error {
	n, err := fs.clean("mkdir", name)
	if err != nil {
		return err
	}
	if _, err := fs.stat(ctx, n); err == nil {
		return &os.PathError{Op: "mkdir", Path: n, Err: os.ErrExist}
	} else if !os.IsNotExist(err) {
		return err
	}
	if err := fs.parentDir(ctx, "mkdir", n); err != nil {
		return err
	}
	defer fs.cache.clear()
	return fs.note(osErr(fs.V.Mkdir(ctx, n)))
}

// OpenFile implements webdav.FileSystem. Reads are lazy (no sandbox call
// until the first Read); O_CREATE opens a streamed write that commits on
// Close; plain O_RDWR (PROPPATCH) gets a read handle, also on directories.
func (fs *FS) OpenFile(ctx context.Context, name string, flag int, _ os.FileMode) (webdav.File, error) {
	n, err := fs.clean("open", name)
	if err != nil {
		return nil, err
	}
	if flag&os.O_CREATE != 0 {
		fi, err := fs.stat(ctx, n)
		switch {
		case err == nil && fi.IsDir:
			return nil, &sandboxfs.Error{Op: "write", Path: n, Kind: sandboxfs.ErrIsDir}
		case err == nil && flag&os.O_EXCL != 0:
			return nil, &os.PathError{Op: "open", Path: n, Err: os.ErrExist}
		case err != nil && !os.IsNotExist(err):
			return nil, err
		}
		if err := fs.parentDir(ctx, "open", n); err != nil {
			return nil, err
		}
		fs.cache.clear()
		return &writeFile{base: base{fs: fs, ctx: ctx, name: n}}, nil
	}
	fi, err := fs.stat(ctx, n)
	if err != nil {
		return nil, err
	}
	b := base{fs: fs, ctx: ctx, name: n, info: fi}
	if fi.IsDir {
		return &dirFile{base: b}, nil
	}
	return &readFile{base: b}, nil
}

// RemoveAll implements webdav.FileSystem (missing is success).
func (fs *FS) RemoveAll(ctx context.Context, name string) error {
	n, err := fs.clean("remove", name)
	if err != nil {
		return err
	}
	defer fs.cache.clear()
	if err := osErr(fs.V.Remove(ctx, n)); err != nil && !os.IsNotExist(err) {
		return fs.note(err)
	}
	return nil
}

// Rename implements webdav.FileSystem. The engine has already removed an
// overwritten destination; a missing destination parent is os.ErrNotExist.
func (fs *FS) Rename(ctx context.Context, oldName, newName string) error {
	from, err := fs.clean("rename", oldName)
	if err != nil {
		return err
	}
	to, err := fs.clean("rename", newName)
	if err != nil {
		return err
	}
	if err := fs.parentDir(ctx, "rename", to); err != nil {
		return err
	}
	defer fs.cache.clear()
	return fs.note(osErr(fs.V.Move(ctx, from, to, false)))
}

// readdir lists directory n, fills the stat cache for every child and loads
// the dead properties of all of them in one query.
func (fs *FS) readdir(ctx context.Context, n string) ([]os.FileInfo, error) {
	list, err := fs.V.List(ctx, n)
	if err != nil {
		return nil, fs.note(osErr(err))
	}
	out := make([]os.FileInfo, 0, len(list))
	paths := make([]string, 0, len(list))
	for _, fi := range list {
		child := path.Join(n, fi.Name)
		fs.cache.put(child, statEntry{fi: fi})
		out = append(out, newFileInfo(child, fi))
		paths = append(paths, child)
	}
	if err := fs.loadProps(ctx, paths); err != nil {
		return nil, err
	}
	return out, nil
}

func (fs *FS) loadProps(ctx context.Context, paths []string) error {
	if fs.V.Props == nil || len(paths) == 0 {
		return nil
	}
	loaded, err := fs.V.Props.Load(ctx, paths)
	if err != nil {
		return fs.note(err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.props == nil {
		fs.props = map[string]propMap{}
	}
	for _, p := range paths {
		fs.props[p] = toPropMap(loaded[p]) // nil when none: still "loaded"
	}
	return nil
}

// deadProps returns name's dead properties (plus quota properties on
// collections), loading them when the listing did not.
func (fs *FS) deadProps(ctx context.Context, n string, isDir bool) (map[xmlName]webdav.Property, error) {
	out := map[xmlName]webdav.Property{}
	if fs.V.Props != nil {
		fs.mu.Lock()
		m, ok := fs.props[n]
		fs.mu.Unlock()
		if !ok {
			if err := fs.loadProps(ctx, []string{n}); err != nil {
				return nil, err
			}
			fs.mu.Lock()
			m = fs.props[n]
			fs.mu.Unlock()
		}
		for k, v := range m {
			out[k] = v
		}
	}
	if isDir && fs.V.Quota != nil {
		q, err := fs.quotaProps(ctx)
		if err != nil {
			return nil, err
		}
		for k, v := range q {
			out[k] = v
		}
	}
	return out, nil
}

func (fs *FS) quotaProps(ctx context.Context) (propMap, error) {
	fs.mu.Lock()
	done, q := fs.quotaDone, fs.quota
	fs.mu.Unlock()
	if done {
		return q, nil
	}
	used, err := fs.V.Quota.Used(ctx)
	if err != nil {
		return nil, fs.note(err)
	}
	q = quotaProps(used, fs.V.Quota.Limit)
	fs.mu.Lock()
	fs.quota, fs.quotaDone = q, true
	fs.mu.Unlock()
	return q, nil
}

// patchProps stores PROPPATCH changes and forgets the cached copy.
func (fs *FS) patchProps(ctx context.Context, n string, patches []webdav.Proppatch) ([]webdav.Propstat, error) {
	if fs.V.Props == nil {
		return nil, errors.New("dead properties are not supported")
	}
	st, err := patch(ctx, fs.V.Props, n, patches)
	if err != nil {
		return nil, fs.note(err)
	}
	fs.mu.Lock()
	delete(fs.props, n)
	fs.mu.Unlock()
	return st, nil
}
