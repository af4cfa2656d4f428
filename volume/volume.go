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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/shell"
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
			return fn(ctx, s.Over(userID, sb.Toolbox))
		})
}

// Over is the user's volume seen through any sandbox that mounts it at
// entity.VolumeMountPath: the files sandbox (Use), or one of the user's
// thread sandboxes, whose writes into the volume must obey the same quota
// and the same spool-and-commit rules. With the shared-volume strategy
// every sandbox of the user mounts only the user's subpath there, so the
// quota (and its measurement) is per user either way.
func (s *Service) Over(userID string, tb sandboxfs.Toolbox) *Volume {
	files := sandboxfs.FS{TB: tb, Root: entity.VolumeMountPath}
	return &Volume{
		Files: files,
		Quota: &Quota{
			Pool:    s.Pool,
			UserID:  userID,
			Limit:   s.QuotaBytes,
			MaxAge:  UsageMaxAge,
			Measure: func(ctx context.Context) (int64, error) { return Measure(ctx, files) },
		},
		Props: &Props{Pool: s.Pool, UserID: userID},
	}
}

// SpoolMaxIdle is how long a spool may go untouched before a measurement
// removes it: no live write leaves its spool idle that long (writes are
// tracked by their reservations, whose sweep removes their files), so one
// that old was left by a writer from before reservations, or by hand.
const SpoolMaxIdle = 24 * time.Hour

// measureCommand sums the sizes of the volume's regular files under root:
// the bytes the quota counts (du would add directory blocks). The hidden
// files of writes in flight are not counted (their reservations are), and
// spools idle for SpoolMaxIdle are removed first.
func measureCommand(root string) string {
	dir := shell.Quote(root)
	idle := strconv.Itoa(int(SpoolMaxIdle / time.Minute))
	return `find ` + dir + ` -type f -name '` + partPrefix + `*' -mmin +` + idle + ` -delete 2>/dev/null; ` +
		`find ` + dir + ` -type f ! -name '` + partPrefix + `*' ! -name '` + asidePrefix + `*' -printf '%s\n' | awk '{s+=$1} END {printf "%d\n", s}'`
}

// Measure runs measureCommand over the volume in a sandbox that mounts it.
func Measure(ctx context.Context, files sandboxfs.FS) (int64, error) {
	res, err := files.TB.Exec(ctx, daytona.ExecRequest{Command: measureCommand(files.Abs("/")), Timeout: 2 * time.Minute})
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
	// ErrTooLarge: the write announced more bytes than the whole quota; it
	// can never fit.
	ErrTooLarge = errors.New("larger than the whole volume quota")
	// ErrWriteInterrupted: the write's directory (and its spool with it) was
	// removed while the file was being written; nothing was stored.
	ErrWriteInterrupted = errors.New("the directory was removed while the file was being written")
	// ErrIncompleteBody: a write whose request body broke off (the client
	// went away or sent less than it announced): the client's fault.
	ErrIncompleteBody = errors.New("the request body ended before it was complete")
	// ErrIntoItself: a move or copy of a resource onto or into itself.
	ErrIntoItself = errors.New("cannot move or copy a resource onto or into itself")
	// ErrRoot: the volume root cannot be written, removed or moved.
	ErrRoot = errors.New("not allowed on the volume root")
)

// Hidden names of a write in flight: its spool, and the file it replaces
// while the commit moves it aside.
const (
	partPrefix  = clientpath.SpoolPrefix
	asidePrefix = clientpath.AsidePrefix
)

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
// announced length (-1 when unknown). The bytes are reserved against the
// quota before the first one is sent (all of them when size is known, in
// growing steps as they arrive when it is not), go to a hidden spool next to
// the target, and replace the target only when complete: a failed,
// cancelled or over-quota write leaves the old file (or nothing) and never a
// truncated one, and a replace leaves the old file or the new one, never
// neither (see commit). The parent directory is created when missing.
func (v *Volume) Put(ctx context.Context, name string, r io.Reader, size int64) (int64, error) {
	return v.put(ctx, name, r, size, "")
}

// PutReserved is Put for a write whose room was reserved beforehand under
// the reservation reserved (an upload's, at its creation): the reservation
// is counted when the write lands, and kept, holding its room, when it
// fails, so the write can be tried again.
func (v *Volume) PutReserved(ctx context.Context, name string, r io.Reader, size int64, reserved string) (int64, error) {
	return v.put(ctx, name, r, size, reserved)
}

// growStep is the least a write of unknown length claims at a time; it
// claims twice what it has written so far, so it never holds much more room
// than it uses, in a few steps (a gigabyte takes a dozen).
const growStep = 256 << 10

// A claim that finds no room is tried growAttempts times in all, growBackoff
// apart (doubling), before the write is refused (350 ms at most): at the
// quota's edge the room may be held for a moment by writers that are about
// to fail and let go of it.
const (
	growAttempts = 4
	growBackoff  = 50 * time.Millisecond
)

func quotaOnly(err error) bool { return errors.Is(err, ErrQuotaExceeded) }

func (v *Volume) put(ctx context.Context, name string, r io.Reader, size int64, reserved string) (int64, error) {
	if name == "/" {
		return 0, rootErr("write")
	}
	if v.Quota != nil && size > v.Quota.Limit {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
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
	dir, base := path.Dir(name), path.Base(name)
	st := commitState{Spool: path.Join(dir, hiddenName(partPrefix, base)), Target: name,
		Aside: path.Join(dir, hiddenName(asidePrefix, base)), Phase: phaseSpool}
	res, err := v.reserve(ctx, st, size, replacing, reserved)
	if err != nil {
		return 0, err
	}
	adopted := reserved != ""
	src := &cappedReader{ctx: ctx, r: r, res: res, fixed: size >= 0}
	if err := v.Files.Upload(ctx, st.Spool, src); err != nil || src.err != nil {
		if src.err != nil { // the client's failure (or the quota), not the toolbox's view of it
			err = src.err
		} else {
			err = renamed(err, name)
		}
		return 0, v.abandon(ctx, res, st, adopted, err)
	}
	cctx, cancel := detached(ctx, commitTimeout)
	defer cancel()
	st, err = v.commit(cctx, res, st, exists)
	if err != nil {
		landed, serr := v.settle(cctx, st)
		if !landed {
			return 0, v.ended(cctx, res, adopted, serr == nil, err)
		}
	}
	var delta int64 = src.n
	if st.HadOld {
		delta -= replacing
	}
	leftover := v.removeIfThere(cctx, st.Aside, st.HadOld) != nil
	if res != nil {
		return src.n, res.Count(cctx, delta, leftover)
	}
	return src.n, nil
}

// reserve claims room for a write of size bytes (-1: unknown) replacing
// replacing bytes, or adopts the reservation reserved (settling what an
// earlier attempt under it left behind). nil without a quota.
func (v *Volume) reserve(ctx context.Context, st commitState, size, replacing int64, reserved string) (*Reservation, error) {
	if v.Quota == nil {
		return nil, nil
	}
	if reserved == "" {
		need, want := size, size
		if size < 0 {
			need, want = 0, 0 // claimed as the bytes arrive
		}
		var res *Reservation
		err := Retry(ctx, growAttempts, growBackoff, quotaOnly, func() (err error) {
			res, err = v.Quota.Reserve(ctx, ReserveOptions{Need: need, Want: want, Credit: replacing,
				Spool: st.Spool, Target: st.Target, KeepAlive: true})
			return err
		})
		return res, err
	}
	res, err := v.Quota.Adopt(ctx, reserved)
	if errors.Is(err, pgx.ErrNoRows) {
		// The reservation expired (its upload sat idle for its whole TTL):
		// the write reserves again, and fits only if there is room now.
		return v.Quota.Reserve(ctx, ReserveOptions{ID: reserved, Need: size, Want: size, Credit: replacing,
			Spool: st.Spool, Target: st.Target, KeepAlive: true})
	}
	if err != nil {
		return nil, err
	}
	if res.leftover != nil {
		sctx, cancel := detached(ctx, commitTimeout)
		defer cancel()
		if _, err := v.settle(sctx, *res.leftover); err != nil {
			res.stop()
			return nil, err
		}
	}
	if err := res.track(ctx, st); err != nil {
		res.stop()
		return nil, err
	}
	return res, nil
}

// abandon cleans up after a write whose spool never completed and returns
// err.
func (v *Volume) abandon(ctx context.Context, res *Reservation, st commitState, adopted bool, err error) error {
	cctx, cancel := detached(ctx, cleanupTimeout)
	defer cancel()
	clean := v.removeIfThere(cctx, st.Spool, true) == nil
	return v.ended(cctx, res, adopted, clean, err)
}

// ended ends the reservation of a write that failed with err (returned):
// released when its files were cleaned up, handed to the sweep when not; an
// adopted one is kept for another attempt.
func (v *Volume) ended(ctx context.Context, res *Reservation, adopted, clean bool, err error) error {
	var rerr error
	switch {
	case res == nil:
	case adopted:
		rerr = res.keep(ctx, clean)
	case clean:
		rerr = res.Release(ctx)
	default:
		rerr = res.Leave(ctx)
	}
	if rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
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

// IsSpool reports whether a directory entry is one of the hidden files of a
// write in flight (its spool, or the file it replaces, moved aside during
// the commit), which listings hide and the quota does not count. Client
// paths never name them (clientpath refuses the prefixes).
func IsSpool(name string) bool { return clientpath.Reserved(name) }

// hiddenName is a hidden name for base with prefix, kept within NAME_MAX.
func hiddenName(prefix, base string) string {
	room := clientpath.MaxNameBytes - len(prefix) - 13
	if len(base) > room {
		base = base[:room]
	}
	return prefix + randomHex(6) + "-" + base
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// copyBufSize is the buffer of streamed bodies: larger than io.Copy's
// 32 KiB, it halves the per-byte syscall and wake-up cost.
const copyBufSize = 256 << 10

// cappedReader passes r through within the write's reservation: reaching
// the claim grows it (a body of unknown length), and a body larger than
// the room the quota leaves fails the stream with ErrQuotaExceeded. It also
// remembers a read error of r, so the caller reports the client's failure
// rather than the toolbox's view of it. res nil: no cap.
type cappedReader struct {
	ctx   context.Context
	r     io.Reader
	res   *Reservation
	fixed bool // the claim does not grow (the size was announced, or the room is used up)
	n     int64
	err   error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	left := int64(-1)
	if c.res != nil {
		left = c.res.Claimed() - c.n
		if int64(len(p)) > left && !c.fixed {
			want := max(2*c.n, c.n+int64(len(p)), growStep)
			// Several bodies of unknown length can each hold part of the room
			// at the quota's edge and starve one another: retried (see
			// growAttempts) while the losers let go.
			grow := func() error { return c.res.Grow(c.ctx, c.n+1, want) }
			switch err := Retry(c.ctx, growAttempts, growBackoff, quotaOnly, grow); {
			case errors.Is(err, ErrQuotaExceeded):
				c.fixed = true
			case err != nil:
				c.err = err
				return 0, err
			}
			left = c.res.Claimed() - c.n
		}
		if int64(len(p)) > left+1 {
			p = p[:left+1] // one byte past the claim tells "more" from "exactly full"
		}
	}
	n, err := c.r.Read(p)
	if left >= 0 && int64(n) > left {
		c.err = fmt.Errorf("%w: the body is larger than the space left", ErrQuotaExceeded)
		return 0, c.err
	}
	c.n += int64(n)
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
