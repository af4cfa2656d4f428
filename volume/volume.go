// Package volume is a user's persistent volume as threadbox serves it: paths
// rooted at the volume, writes that spool to a hidden file and appear only
// when complete, the quota threadbox enforces (Daytona volumes have no size),
// and the WebDAV dead properties that follow their resources. The REST files
// API, WebDAV and tus uploads all write through it, so they share one set of
// rules; each reaches a user's volume through an Opener, which runs it over
// the user's files sandbox.
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/sandbox"
	"github.com/threadbox/threadbox/sandboxfs"
)

// Opener gives access to a user's volume for the span of fn, with the user's
// files sandbox running (and held running) throughout. fn may run twice when
// the files sandbox was found stopped behind the cache and the use is
// replayable (see sandbox.Client.Use).
type Opener interface {
	Use(ctx context.Context, userID string, o UseOptions, fn func(context.Context, *Volume) error) error
}

// UseOptions describe one use of a volume.
type UseOptions struct {
	// Replayable reports whether fn may run again after it failed (nil: yes).
	Replayable func() bool
}

// UsageMaxAge bounds how stale the stored volume usage may be for a quota
// decision before it is re-measured in the sandbox (agents' writes only show
// up that way).
const UsageMaxAge = 5 * time.Minute

// Service opens users' volumes over their files sandboxes: it is the Opener
// the files routes, WebDAV and uploads share.
type Service struct {
	Sandboxes  *sandbox.Client
	Pool       *pgxpool.Pool
	QuotaBytes int64
}

var _ Opener = (*Service)(nil)

// Use runs fn with the user's volume through the user's files sandbox (see
// sandbox.Client.Use: started when needed, held for as long as fn runs,
// retried once when found stopped behind the cache).
func (s *Service) Use(ctx context.Context, userID string, o UseOptions, fn func(context.Context, *Volume) error) error {
	return s.Sandboxes.Use(ctx, entity.Files(userID), sandbox.UseOptions{Replayable: o.Replayable},
		func(ctx context.Context, sb *sandbox.Sandbox) error {
			return fn(ctx, s.volume(userID, sandboxfs.FS{TB: sb.Toolbox, Root: entity.VolumeMountPath}))
		})
}

// volume builds the quota- and property-aware view of a user's volume.
func (s *Service) volume(userID string, files sandboxfs.FS) *Volume {
	return &Volume{
		Files: files,
		Quota: &Quota{
			Queries: db.New(s.Pool),
			UserID:  userID,
			Limit:   s.QuotaBytes,
			MaxAge:  UsageMaxAge,
			Measure: func(ctx context.Context) (int64, error) { return Measure(ctx, files) },
		},
		Props: &Props{Pool: s.Pool, UserID: userID},
	}
}

// measureCommand sums the sizes of the volume's regular files: the bytes the
// quota counts (du would add directory blocks).
func measureCommand() string {
	return `find ` + sandboxfs.ShellQuote(entity.VolumeMountPath) + ` -type f -printf '%s\n' | awk '{s+=$1} END {printf "%d\n", s}'`
}

// Measure runs measureCommand in the files sandbox.
func Measure(ctx context.Context, files sandboxfs.FS) (int64, error) {
	res, err := files.TB.Exec(ctx, daytona.ExecRequest{Command: measureCommand(), Timeout: 2 * time.Minute})
	if err != nil {
		return 0, fmt.Errorf("measuring the volume: %w", err)
	}
	fields := strings.Fields(res.Output)
	if res.ExitCode != 0 || len(fields) == 0 {
		return 0, fmt.Errorf("measuring the volume: exit %d: %q", res.ExitCode, res.Output)
	}
	n, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("measuring the volume: %q: %w", res.Output, err)
	}
	return n, nil
}

// Errors of volume operations besides sandboxfs's kinds.
var (
	// ErrQuotaExceeded: the write would take the volume past its quota.
	ErrQuotaExceeded = errors.New("volume quota exceeded")
	// ErrIncompleteBody: a write whose request body broke off (the client
	// went away or sent less than it announced): the client's fault.
	ErrIncompleteBody = errors.New("the request body ended before it was complete")
	// ErrIntoItself: a move or copy of a resource onto or into itself.
	ErrIntoItself = errors.New("cannot move or copy a resource onto or into itself")
	// ErrRoot: the volume root cannot be written, removed or moved.
	ErrRoot = errors.New("not allowed on the volume root")
)

// partPrefix names the hidden spool files of writes in flight.
const partPrefix = ".tbpart-"

// cleanupTimeout bounds best-effort cleanup after a failed write; it runs on
// a context detached from the (possibly cancelled) request.
const cleanupTimeout = 30 * time.Second

// Volume is a user's volume as seen through their files sandbox. All paths
// are canonical volume paths (clientpath.Volume): "/" is the root. Quota and
// Props are optional.
type Volume struct {
	Files sandboxfs.FS // rooted at the volume's mount path
	Quota *Quota
	Props *Props
}

func rootErr(op string) error { return &sandboxfs.Error{Op: op, Path: "/", Kind: ErrRoot} }

// Stat describes name.
func (v *Volume) Stat(ctx context.Context, name string) (daytona.FileInfo, error) {
	fi, err := v.Files.Stat(ctx, name)
	if err != nil {
		return daytona.FileInfo{}, err
	}
	if name == "/" {
		fi.Name = ""
	}
	return fi, nil
}

// List returns the entries of directory name, without in-flight spools.
func (v *Volume) List(ctx context.Context, name string) ([]daytona.FileInfo, error) {
	list, err := v.Files.List(ctx, name)
	if err != nil {
		return nil, err
	}
	out := list[:0]
	for _, fi := range list {
		if !IsSpool(fi.Name) {
			out = append(out, fi)
		}
	}
	return out, nil
}

// Download streams length bytes of name from offset (length < 0: to the end).
func (v *Volume) Download(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	return v.Files.Download(ctx, name, offset, length)
}

// Put writes r to the file name and returns the bytes written. size is the
// announced length (-1 when unknown) for an early quota check; the stream is
// capped at the quota left either way. The bytes go to a hidden spool next to
// the target and are renamed over it only when complete, so a failed,
// cancelled or over-quota write leaves nothing behind and never a truncated
// file. The parent directory is created when missing.
func (v *Volume) Put(ctx context.Context, name string, r io.Reader, size int64) (int64, error) {
	if name == "/" {
		return 0, rootErr("write")
	}
	var replacing int64
	old, err := v.Stat(ctx, name)
	exists := err == nil
	switch {
	case exists && old.IsDir:
		return 0, &sandboxfs.Error{Op: "write", Path: name, Kind: sandboxfs.ErrIsDir}
	case exists:
		replacing = old.Size
	case !errors.Is(err, fs.ErrNotExist):
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
	part := path.Join(path.Dir(name), spoolName(path.Base(name)))
	src := &cappedReader{r: r, left: limit}
	if err := v.Files.Upload(ctx, part, src); err != nil {
		v.cleanup(ctx, part)
		if src.err != nil {
			return 0, src.err
		}
		return 0, renamed(err, name)
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

// renamed points a file error about a spool at the file the client named.
func renamed(err error, name string) error {
	var fe *sandboxfs.Error
	if errors.As(err, &fe) {
		c := *fe
		c.Path = name
		return &c
	}
	return err
}

// commit renames the finished spool over the target. Daytona's move never
// overwrites, so an existing target is deleted first; a writer racing us in
// that window makes the move conflict once, and we retry.
func (v *Volume) commit(ctx context.Context, part, name string, exists bool) error {
	for attempt := 0; ; attempt++ {
		if exists {
			if err := v.Files.Delete(ctx, name, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		err := v.Files.Move(ctx, part, name)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrExist) || attempt > 0 {
			return renamed(err, name)
		}
		exists = true
	}
}

func (v *Volume) cleanup(ctx context.Context, part string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = v.Files.Delete(ctx, part, false)
}

// Mkdir creates directory name (and its parents).
func (v *Volume) Mkdir(ctx context.Context, name string) error {
	return v.Files.Mkdir(ctx, name)
}

// Remove deletes a file or a whole tree, its dead properties, and accounts
// for the freed space (exactly for a file; a tree marks usage for
// re-measurement).
func (v *Volume) Remove(ctx context.Context, name string) error {
	if name == "/" {
		return rootErr("delete")
	}
	fi, err := v.Stat(ctx, name)
	if err != nil {
		return err
	}
	if err := v.Files.Delete(ctx, name, fi.IsDir); err != nil {
		return err
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

// RemoveFileOrEmptyDir deletes a file, or a directory only when it is empty:
// the emptiness check and the removal are one rmdir in the sandbox, so a file
// written into it meanwhile, or an upload's hidden spool, is never lost.
func (v *Volume) RemoveFileOrEmptyDir(ctx context.Context, name string) error {
	if name == "/" {
		return rootErr("delete")
	}
	fi, err := v.Stat(ctx, name)
	if err != nil {
		return err
	}
	if !fi.IsDir {
		return v.Remove(ctx, name)
	}
	if err := v.Files.RemoveEmptyDir(ctx, name); err != nil {
		return err
	}
	if v.Props != nil {
		return v.Props.DeleteTree(ctx, name)
	}
	return nil
}

// Move renames from to to, with their dead properties. With overwrite an
// existing destination is removed first; without it, it is fs.ErrExist.
func (v *Volume) Move(ctx context.Context, from, to string, overwrite bool) error {
	if from == "/" || to == "/" {
		return rootErr("move")
	}
	if to == from || clientpath.IsAncestor(from, to) {
		return &sandboxfs.Error{Op: "move", Path: to, Kind: ErrIntoItself}
	}
	if overwrite {
		if err := v.Remove(ctx, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := v.Files.Move(ctx, from, to); err != nil {
		return err
	}
	if v.Props != nil {
		return v.Props.MoveTree(ctx, from, to)
	}
	return nil
}

// IsSpool reports whether a directory entry is one of the hidden spools of a
// write in flight, which listings hide.
func IsSpool(name string) bool { return strings.HasPrefix(name, partPrefix) }

// spoolName is the spool name for base, kept within NAME_MAX.
func spoolName(base string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	const room = clientpath.MaxNameBytes - len(partPrefix) - 13
	if len(base) > room {
		base = base[:room]
	}
	return partPrefix + hex.EncodeToString(b[:]) + "-" + base
}

// copyBufSize is the buffer of streamed bodies: larger than io.Copy's
// 32 KiB, it halves the per-byte syscall and wake-up cost.
const copyBufSize = 256 << 10

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
