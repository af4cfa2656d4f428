package dav

import (
	"context"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/daytona"
)

// fileInfo is an os.FileInfo from a sandbox listing. It implements
// webdav.ContentTyper so the engine never opens a file and reads 512 bytes
// to sniff its type (once per PROPFIND entry otherwise).
type fileInfo struct {
	name string
	fi   daytona.FileInfo
}

func newFileInfo(name string, fi daytona.FileInfo) *fileInfo {
	return &fileInfo{name: path.Base(name), fi: fi}
}

func (f *fileInfo) Name() string       { return f.name }
func (f *fileInfo) Size() int64        { return f.fi.Size }
func (f *fileInfo) ModTime() time.Time { return f.fi.ModTime }
func (f *fileInfo) IsDir() bool        { return f.fi.IsDir }
func (f *fileInfo) Sys() any           { return nil }
func (f *fileInfo) Mode() os.FileMode {
	if f.fi.IsDir {
		return os.ModeDir | 0o755
	}
	return 0o644
}

// ContentType answers from the extension only (never by reading the file).
func (f *fileInfo) ContentType(context.Context) (string, error) {
	return httpio.ContentType(f.name), nil
}

// ETag is the engine's own default tag, modification time and size (the
// toolbox offers no content hash), given here so the If header's entity
// tags are compared with exactly what GET and PROPFIND answer.
func (f *fileInfo) ETag(context.Context) (string, error) {
	return fmt.Sprintf(`"%x%x"`, f.fi.ModTime.UnixNano(), f.fi.Size), nil
}

// etag is the current ETag of volume path p, for the If header; false when
// p does not exist.
func (fs *FS) etag(ctx context.Context, p string) (string, bool, error) {
	fi, err := fs.Stat(ctx, p)
	if os.IsNotExist(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	tag, err := fi.(*fileInfo).ETag(ctx)
	return tag, true, err
}
