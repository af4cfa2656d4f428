package dav

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/threadbox/threadbox/daytona"
)

// partPrefix names the hidden spool files of writes in flight.
const partPrefix = ".tbpart-"

// cleanupTimeout bounds best-effort cleanup after a failed write; it runs on
// a context detached from the (possibly cancelled) request.
const cleanupTimeout = 30 * time.Second

// Volume is a user's volume as seen through their files sandbox. All paths
// are canonical volume paths (see CleanPath). Quota and Props are optional.
type Volume struct {
	TB    Toolbox
	Root  string // the volume's mount point in the files sandbox
	Quota *Quota
	Props *PropStore
}

// Abs is the sandbox path of a volume path.
func (v *Volume) Abs(name string) string { return join(v.Root, name) }

// Stat describes name (os.ErrNotExist inside a *os.PathError when missing).
func (v *Volume) Stat(ctx context.Context, name string) (daytona.FileInfo, error) {
	fi, err := v.TB.Stat(ctx, v.Abs(name))
	if err != nil {
		return daytona.FileInfo{}, pathErr("stat", name, err)
	}
	if name == "/" {
		fi.Name = ""
	}
	return fi, nil
}

// List returns the entries of directory name, without in-flight spools.
func (v *Volume) List(ctx context.Context, name string) ([]daytona.FileInfo, error) {
	list, err := v.TB.List(ctx, v.Abs(name))
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	out := list[:0]
	for _, fi := range list {
		if !isPartName(fi.Name) {
			out = append(out, fi)
		}
	}
	return out, nil
}

// Put writes r to the file name and returns the bytes written. size is the
// announced length (-1 when unknown) for an early quota check; the stream is
// capped at the quota left either way. The bytes go to a hidden spool next to
// the target and are renamed over it only when complete, so a failed,
// cancelled or over-quota write leaves nothing behind and never a truncated
// file. The parent directory is created when missing.
func (v *Volume) Put(ctx context.Context, name string, r io.Reader, size int64) (int64, error) {
	if name == "/" {
		return 0, &os.PathError{Op: "put", Path: name, Err: os.ErrExist}
	}
	var replacing int64
	old, err := v.Stat(ctx, name)
	exists := err == nil
	switch {
	case exists && old.IsDir:
		return 0, &os.PathError{Op: "put", Path: name, Err: ErrIsDir}
	case exists:
		replacing = old.Size
	case !os.IsNotExist(err):
		return 0, err
	}
	limit := int64(-1)
	if v.Quota != nil {
		if size >= 0 {
			if err := v.Quota.Check(ctx, size, replacing); err != nil {
				return 0, err
			}
		}
		if limit, err = v.Quota.Available(ctx, replacing); err != nil {
			return 0, err
		}
	}
	part := path.Join(path.Dir(name), partName(path.Base(name)))
	src := &cappedReader{r: r, left: limit}
	if err := v.TB.Upload(ctx, v.Abs(part), src); err != nil {
		v.cleanup(ctx, part)
		if src.err != nil {
			return 0, src.err
		}
		return 0, pathErr("put", name, err)
	}
	if src.err != nil { // the toolbox saw a clean EOF we forged; never commit
		v.cleanup(ctx, part)
		return 0, src.err
	}
	if err := v.commit(ctx, part, name, exists); err != nil {
		v.cleanup(ctx, part)
		return 0, err
	}
	if v.Quota != nil {
		if err := v.Quota.Add(ctx, src.n-replacing); err != nil {
			return src.n, err
		}
	}
	return src.n, nil
}

// commit renames the finished spool over the target. Daytona's move never
// overwrites, so an existing target is deleted first; a writer racing us in
// that window makes the move conflict once, and we retry.
func (v *Volume) commit(ctx context.Context, part, name string, exists bool) error {
	for attempt := 0; ; attempt++ {
		if exists {
			if err := v.TB.Delete(ctx, v.Abs(name), false); err != nil && !errors.Is(err, daytona.ErrNotFound) {
				return pathErr("put", name, err)
			}
		}
		err := v.TB.Move(ctx, v.Abs(part), v.Abs(name))
		if err == nil {
			return nil
		}
		if !errors.Is(err, daytona.ErrConflict) || attempt > 0 {
			return pathErr("put", name, err)
		}
		exists = true
	}
}

func (v *Volume) cleanup(ctx context.Context, part string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = v.TB.Delete(ctx, v.Abs(part), false)
}

// Mkdir creates directory name (and its parents).
func (v *Volume) Mkdir(ctx context.Context, name string) error {
	return pathErr("mkdir", name, v.TB.Mkdir(ctx, v.Abs(name)))
}

// Remove deletes a file or a whole tree, its dead properties, and accounts
// for the freed space (exactly for a file; a tree marks usage for
// re-measurement).
func (v *Volume) Remove(ctx context.Context, name string) error {
	if name == "/" {
		return &os.PathError{Op: "remove", Path: name, Err: os.ErrPermission}
	}
	fi, err := v.Stat(ctx, name)
	if err != nil {
		return err
	}
	if err := v.TB.Delete(ctx, v.Abs(name), fi.IsDir); err != nil {
		return pathErr("remove", name, err)
	}
	if v.Props != nil {
		if err := v.Props.DeleteTree(ctx, name); err != nil {
			return err
		}
	}
	if v.Quota != nil {
		if fi.IsDir {
			return v.Quota.Invalidate(ctx)
		}
		return v.Quota.Add(ctx, -fi.Size)
	}
	return nil
}

// Move renames from to to, with their dead properties. With overwrite an
// existing destination is removed first; without it, it is os.ErrExist.
func (v *Volume) Move(ctx context.Context, from, to string, overwrite bool) error {
	if from == "/" || to == "/" {
		return &os.PathError{Op: "move", Path: from, Err: os.ErrPermission}
	}
	if to == from || (len(to) > len(from) && to[:len(from)+1] == from+"/") {
		return &os.PathError{Op: "move", Path: to, Err: ErrIntoItself}
	}
	if overwrite {
		if err := v.Remove(ctx, to); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := v.TB.Move(ctx, v.Abs(from), v.Abs(to)); err != nil {
		return pathErr("move", from, err)
	}
	if v.Props != nil {
		return v.Props.MoveTree(ctx, from, to)
	}
	return nil
}

var (
	// ErrIsDir is a file operation on a directory.
	ErrIsDir = errors.New("is a directory")
	// ErrIncompleteBody is a write whose request body broke off (the client
	// went away or sent less than it announced): the client's fault, not ours.
	ErrIncompleteBody = errors.New("the request body ended before it was complete")
	// ErrIntoItself is a move or copy of a resource onto or into itself.
	ErrIntoItself = errors.New("cannot move or copy a resource onto or into itself")
)

// partName is the spool name for base, kept within NAME_MAX.
func partName(base string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	const room = maxNameLen - len(partPrefix) - 13
	if len(base) > room {
		base = base[:room]
	}
	return partPrefix + hex.EncodeToString(b[:]) + "-" + base
}

// cappedReader passes r through until left bytes, and fails the stream with
// ErrQuotaExceeded when r has more (left < 0: no cap). It also remembers a
// read error of r, so the caller reports the client's failure rather than
// the toolbox's view of it.
type cappedReader struct {
	r    io.Reader
	left int64
	n    int64
	err  error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.left >= 0 && int64(len(p)) > c.left+1 {
		p = p[:c.left+1] // one byte past the cap tells "more" from "exactly full"
	}
	n, err := c.r.Read(p)
	if c.left >= 0 && int64(n) > c.left {
		c.err = fmt.Errorf("%w: the body is larger than the space left", ErrQuotaExceeded)
		return 0, c.err
	}
	c.n += int64(n)
	if c.left >= 0 {
		c.left -= int64(n)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = fmt.Errorf("%w: %w", ErrIncompleteBody, err)
	}
	return n, err
}

// WriteTo lets io.Copy (in the toolbox upload) move the body with a large
// buffer instead of 32 KiB at a time.
func (c *cappedReader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, copyBufSize)
	var total int64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
