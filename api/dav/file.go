package dav

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/net/webdav"

	"github.com/threadbox/threadbox/daytona"
)

type xmlName = xml.Name

// base is what every handle shares: its path, the request's FS and the
// stat it was opened from; it implements webdav.DeadPropsHolder.
type base struct {
	fs   *FS
	ctx  context.Context
	name string
	info daytona.FileInfo
}

func (b *base) Stat() (os.FileInfo, error) { return newFileInfo(b.name, b.info), nil }

// DeadProps implements webdav.DeadPropsHolder.
func (b *base) DeadProps() (map[xml.Name]webdav.Property, error) {
	return b.fs.deadProps(b.ctx, b.name, b.info.IsDir)
}

// Patch implements webdav.DeadPropsHolder.
func (b *base) Patch(p []webdav.Proppatch) ([]webdav.Propstat, error) {
	return b.fs.patchProps(b.ctx, b.name, p)
}

var errNotWritable = errors.New("handle is not open for writing")

// readFile reads a file lazily: Seek only moves the offset, and the first
// Read opens a ranged download from there, so opening for properties or a
// Range GET never downloads what it does not need.
type readFile struct {
	base
	off     int64
	body    io.ReadCloser
	bodyOff int64
}

func (f *readFile) Read(p []byte) (int, error) {
	if f.off >= f.info.Size {
		return 0, io.EOF
	}
	if f.body == nil || f.bodyOff != f.off {
		if f.body != nil {
			_ = f.body.Close()
			f.body = nil
		}
		body, err := f.fs.V.Download(f.ctx, f.name, f.off, -1)
		if err != nil {
			return 0, f.fs.note(osErr(err))
		}
		f.body, f.bodyOff = body, f.off
	}
	n, err := f.body.Read(p)
	f.off += int64(n)
	f.bodyOff += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		err = f.fs.note(osErr(err))
	}
	return n, err
}

func (f *readFile) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.off + offset
	case io.SeekEnd:
		abs = f.info.Size + offset
	default:
		return 0, &os.PathError{Op: "seek", Path: f.name, Err: os.ErrInvalid}
	}
	if abs < 0 {
		return 0, &os.PathError{Op: "seek", Path: f.name, Err: os.ErrInvalid}
	}
	f.off = abs
	return abs, nil
}

func (f *readFile) Close() error {
	if f.body != nil {
		err := f.body.Close()
		f.body = nil
		return err
	}
	return nil
}

func (f *readFile) Readdir(int) ([]os.FileInfo, error) {
	return nil, &os.PathError{Op: "readdir", Path: f.name, Err: errors.New("not a directory")}
}

func (f *readFile) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: f.name, Err: errNotWritable}
}

// dirFile lists a directory with one sandbox call, on first Readdir.
type dirFile struct {
	base
	entries []os.FileInfo
	listed  bool
	pos     int
}

func (d *dirFile) Readdir(count int) ([]os.FileInfo, error) {
	if !d.listed {
		list, err := d.fs.readdir(d.ctx, d.name)
		if err != nil {
			return nil, err
		}
		d.entries, d.listed = list, true
	}
	rest := d.entries[d.pos:]
	if count <= 0 {
		d.pos = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n := min(count, len(rest))
	d.pos += n
	return rest[:n], nil
}

func (d *dirFile) Read([]byte) (int, error) {
	return 0, &os.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}

func (d *dirFile) Seek(offset int64, whence int) (int64, error) {
	if offset == 0 && whence == io.SeekStart {
		d.pos = 0
		return 0, nil
	}
	return 0, &os.PathError{Op: "seek", Path: d.name, Err: os.ErrInvalid}
}

func (d *dirFile) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: d.name, Err: errNotWritable}
}

func (d *dirFile) Close() error { return nil }

// sizeHintKey carries a PUT's Content-Length to the FileSystem, so quota is
// checked before the first byte is accepted.
type sizeHintKey struct{}

// WithSizeHint records the announced size of the body being written.
func WithSizeHint(ctx context.Context, n int64) context.Context {
	return context.WithValue(ctx, sizeHintKey{}, n)
}

func sizeHint(ctx context.Context) int64 {
	if n, ok := ctx.Value(sizeHintKey{}).(int64); ok {
		return n
	}
	return -1
}

// writeFile streams into the volume. io.Copy hands it the source through
// ReadFrom, which goes straight to Volume.Put (spool, then rename); plain
// Writes are piped to a Put running alongside. Nothing is visible until the
// write completes, and Close reports its outcome.
type writeFile struct {
	base
	written int64
	done    bool
	err     error

	pw     *io.PipeWriter
	result chan putResult
}

type putResult struct {
	n   int64
	err error
}

func (w *writeFile) ReadFrom(r io.Reader) (int64, error) {
	if w.done || w.pw != nil {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	n, err := w.fs.V.Put(w.ctx, w.name, r, sizeHint(w.ctx))
	w.finish(n, err)
	return n, err
}

func (w *writeFile) Write(p []byte) (int, error) {
	if w.done {
		return 0, &os.PathError{Op: "write", Path: w.name, Err: errNotWritable}
	}
	if w.pw == nil {
		pr, pw := io.Pipe()
		w.pw, w.result = pw, make(chan putResult, 1)
		go func() {
			n, err := w.fs.V.Put(w.ctx, w.name, pr, -1)
			pr.CloseWithError(err)
			w.result <- putResult{n, err}
		}()
	}
	return w.pw.Write(p)
}

func (w *writeFile) finish(n int64, err error) {
	w.done, w.written, w.err = true, n, w.fs.noteWrite(err)
	w.info = daytona.FileInfo{Size: n, ModTime: time.Now()}
	w.fs.cache.clear()
}

// Stat describes the file as written so far; the engine calls it before
// Close for the ETag of a PUT, so a pending piped write is completed first.
func (w *writeFile) Stat() (os.FileInfo, error) {
	w.complete()
	if w.err != nil {
		return nil, w.err
	}
	return newFileInfo(w.name, w.info), nil
}

func (w *writeFile) complete() {
	switch {
	case w.done:
	case w.pw != nil:
		_ = w.pw.Close()
		r := <-w.result
		w.finish(r.n, r.err)
	default: // opened and closed without data: LOCK on an unmapped URL, empty PUT
		n, err := w.fs.V.Put(w.ctx, w.name, eofReader{}, 0)
		w.finish(n, err)
	}
}

func (w *writeFile) Close() error {
	w.complete()
	return w.err
}

func (w *writeFile) Read([]byte) (int, error) {
	return 0, &os.PathError{Op: "read", Path: w.name, Err: errors.New("handle is write-only")}
}

func (w *writeFile) Seek(offset int64, whence int) (int64, error) {
	if offset == 0 && (whence == io.SeekCurrent || whence == io.SeekEnd) {
		return w.written, nil
	}
	return 0, &os.PathError{Op: "seek", Path: w.name, Err: os.ErrInvalid}
}

func (w *writeFile) Readdir(int) ([]os.FileInfo, error) {
	return nil, &os.PathError{Op: "readdir", Path: w.name, Err: errors.New("not a directory")}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
