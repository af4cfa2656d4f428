// Package davlock keeps users' WebDAV locks in PostgreSQL, so every replica
// of `threadbox serve` sees the same locks: a LOCK taken through one replica
// is honoured by every other, and a client's next request may land anywhere.
//
// It knows locks, not HTTP: api/dav turns requests into the calls below
// (LOCK → Create or Refresh, UNLOCK → Unlock, a write → Acquire) and their
// errors into WebDAV statuses. The semantics are those of the engine's
// in-memory lock system (golang.org/x/net/webdav memLS), plus shared locks:
//
//   - A lock covers its root, and with infinite depth everything below it.
//     Two locks conflict when one covers the other's root (or, for an
//     infinite-depth lock, anything below it), unless both are shared.
//   - A write presents lock tokens (the If header). Acquire lets it through
//     when every lock covering its targets was presented; the locks it
//     presented are held for the request (nobody else may use, refresh or
//     unlock a held lock, and it does not expire while held). A target no
//     presented lock covers gets a transient exclusive lock for the request,
//     so concurrent writers and LOCKs see each other, as the engine's
//     temporary locks do.
//   - Holds and transient locks are leases (Store.Lease) that the request
//     renews while it runs: a replica that dies mid-request leaves nothing
//     that outlives the lease.
//   - Timeouts are measured on the caller's clock (the engine passes "now");
//     replicas are expected to keep their clocks in sync (NTP).
package davlock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/threadbox/threadbox/db"
)

// DefaultMaxPerUser bounds a user's live locks when Store.MaxPerUser is 0:
// each keeps its owner XML in PostgreSQL for up to its timeout.
const DefaultMaxPerUser = 1000

// DefaultLease is how long a request's holds and transient locks last
// without renewal when Store.Lease is 0. It bounds how long a replica that
// died mid-write (SIGKILL, a lost node) keeps the file locked against
// everybody, the client retrying that very write included: short, since the
// running write renews it every third (3.3 s), so only a holder that stopped
// renewing for 10 s loses it. It was a minute, and a client whose PUT was
// cut by a killed replica got 423 for up to a minute on its retry.
const DefaultLease = 10 * time.Second

// staleAfter is how long an expired lock is kept before any replica's
// Create sweeps it: longer than the clock skew between replicas.
const staleAfter = time.Minute

var (
	// ErrLocked is a conflicting lock: the new lock or the write is refused
	// (WebDAV 423).
	ErrLocked = errors.New("davlock: locked")
	// ErrNoSuchLock is a token that names no live lock of the user on the
	// resource (WebDAV 412 on a refresh, 409 on UNLOCK).
	ErrNoSuchLock = errors.New("davlock: no such lock")
	// ErrHeld is a lock another request is using right now (WebDAV 412 for a
	// write that presents it, 423 for a refresh or UNLOCK).
	ErrHeld = errors.New("davlock: lock in use by another request")
	// ErrTooManyLocks is a LOCK refused because the user holds MaxPerUser
	// live locks already.
	ErrTooManyLocks = errors.New("davlock: too many live locks")
)

// LockedError is ErrLocked (errors.Is) caused only by other requests'
// writes in progress (transient locks, no client's LOCK): RetryAfter is when
// the latest of their current leases ends, the longest the conflict lasts
// if its writer died, so the client can be told when to try again. A
// conflict with a client's LOCK is plain ErrLocked: it lasts until that
// client unlocks.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string        { return ErrLocked.Error() + " by a write in progress" }
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// conflict is the error for a path whose locks refuse the request: a
// LockedError when every refusing lock is transient, else ErrLocked.
func conflict(refusing []db.DavLock, now time.Time) error {
	var until time.Time
	for _, l := range refusing {
		if !l.Transient {
			return ErrLocked
		}
		if l.ExpiresAt.After(until) {
			until = l.ExpiresAt
		}
	}
	return &LockedError{RetryAfter: max(until.Sub(now), time.Second)}
}

// Store is the lock table. The zero value with a Pool is ready to use.
type Store struct {
	Pool *pgxpool.Pool
	// MaxPerUser bounds each user's live locks (DefaultMaxPerUser when 0).
	MaxPerUser int
	// Lease bounds a request's holds and transient locks between renewals
	// (DefaultLease when 0); they are renewed every third of it.
	Lease  time.Duration
	Logger *slog.Logger
}

// Lock is one WebDAV lock.
type Lock struct {
	Token string
	// Root is the locked volume path, cleaned ("/" or "/a/b").
	Root      string
	ZeroDepth bool
	Shared    bool
	OwnerXML  string
	Timeout   time.Duration
	ExpiresAt time.Time
}

// Target is a resource a write is about to change. Tree marks a write that
// changes everything below it too (DELETE, MOVE, COPY's destination), so
// locks below it must have been presented as well.
type Target struct {
	Path string
	Tree bool
}

func (s *Store) maxPerUser() int {
	if s.MaxPerUser > 0 {
		return s.MaxPerUser
	}
	return DefaultMaxPerUser
}

func (s *Store) lease() time.Duration {
	if s.Lease > 0 {
		return s.Lease
	}
	return DefaultLease
}

func (s *Store) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// inUserTx runs fn in a transaction that holds the user's lock-table lock,
// so conflict checks and writes of concurrent requests, on any replica,
// never interleave.
func (s *Store) inUserTx(ctx context.Context, user string, fn func(q *db.Queries) error) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		q := db.New(tx)
		if err := q.LockDavUser(ctx, user); err != nil {
			return fmt.Errorf("locking the lock table: %w", err)
		}
		return fn(q)
	})
}

// Create takes a new lock for user (its Token and ExpiresAt are filled in).
func (s *Store) Create(ctx context.Context, user string, now time.Time, l Lock) (Lock, error) {
	l.Root = clean(l.Root)
	l.Token = newToken()
	l.ExpiresAt = now.Add(l.Timeout)
	err := s.inUserTx(ctx, user, func(q *db.Queries) error {
		if _, err := q.DeleteStaleDavLocks(ctx, now.Add(-staleAfter)); err != nil {
			return fmt.Errorf("sweeping expired locks: %w", err)
		}
		n, err := q.CountDavLocks(ctx, db.CountDavLocksParams{UserID: user, Now: now})
		if err != nil {
			return fmt.Errorf("counting locks: %w", err)
		}
		if n >= int64(s.maxPerUser()) {
			return ErrTooManyLocks
		}
		near, err := q.DavLocksNear(ctx, db.DavLocksNearParams{UserID: user, Now: now, Path: l.Root})
		if err != nil {
			return fmt.Errorf("reading locks: %w", err)
		}
		var refusing []db.DavLock
		for _, o := range near {
			overlap := covers(o, l.Root) || (!l.ZeroDepth && below(o.Root, l.Root))
			if overlap && !(l.Shared && o.Shared && !o.Transient) {
				refusing = append(refusing, o)
			}
		}
		if len(refusing) > 0 {
			return conflict(refusing, now)
		}
		return q.InsertDavLock(ctx, db.InsertDavLockParams{
			Token: l.Token, UserID: user, Root: l.Root, ZeroDepth: l.ZeroDepth, Shared: l.Shared,
			OwnerXml: l.OwnerXML, TimeoutS: int64(l.Timeout / time.Second), ExpiresAt: l.ExpiresAt,
		})
	})
	if err != nil {
		return Lock{}, wrap("creating a lock", err)
	}
	return l, nil
}

// Refresh gives the lock token a new timeout, counted from now. The request
// must be addressed to a resource the lock covers.
func (s *Store) Refresh(ctx context.Context, user string, now time.Time, token, at string, timeout time.Duration) (Lock, error) {
	var out Lock
	err := s.inUserTx(ctx, user, func(q *db.Queries) error {
		row, err := s.live(ctx, q, user, now, token, at)
		if err != nil {
			return err
		}
		exp := now.Add(timeout)
		if err := q.RefreshDavLock(ctx, db.RefreshDavLockParams{UserID: user, Token: token, TimeoutS: int64(timeout / time.Second), ExpiresAt: exp}); err != nil {
			return err
		}
		row.TimeoutS, row.ExpiresAt = int64(timeout/time.Second), exp
		out = fromRow(row)
		return nil
	})
	if err != nil {
		return Lock{}, wrap("refreshing a lock", err)
	}
	return out, nil
}

// Unlock removes the lock token; the request must be addressed to a
// resource the lock covers.
func (s *Store) Unlock(ctx context.Context, user string, now time.Time, token, at string) error {
	err := s.inUserTx(ctx, user, func(q *db.Queries) error {
		if _, err := s.live(ctx, q, user, now, token, at); err != nil {
			return err
		}
		return q.DeleteDavLock(ctx, db.DeleteDavLockParams{UserID: user, Token: token})
	})
	return wrap("unlocking", err)
}

// live returns token's lock when it is live, covers at and no request holds it.
func (s *Store) live(ctx context.Context, q *db.Queries, user string, now time.Time, token, at string) (db.DavLock, error) {
	row, err := q.GetDavLock(ctx, db.GetDavLockParams{UserID: user, Token: token, Now: now})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !covers(row, clean(at))) {
		return db.DavLock{}, ErrNoSuchLock
	}
	if err != nil {
		return db.DavLock{}, err
	}
	if row.HeldUntil != nil && row.HeldUntil.After(now) {
		return db.DavLock{}, ErrHeld
	}
	return row, nil
}

// Covering returns the user's live locks that cover p (the locks whose
// tokens "match" p in an If header).
func (s *Store) Covering(ctx context.Context, user string, now time.Time, p string) ([]Lock, error) {
	p = clean(p)
	rows, err := db.New(s.Pool).DavLocksNear(ctx, db.DavLocksNearParams{UserID: user, Now: now, Path: p})
	if err != nil {
		return nil, fmt.Errorf("reading locks: %w", err)
	}
	var out []Lock
	for _, r := range rows {
		if !r.Transient && covers(r, p) {
			out = append(out, fromRow(r))
		}
	}
	return out, nil
}

// Acquire lets a write through when it presented the locks on its targets
// (an exclusive lock's token, or one of the shared locks'; this request's own
// transient locks count as presented, see Grant.Tokens), else ErrLocked.
// The presented locks covering a target are held; a target none covers gets
// a transient lock. ErrHeld: a presented lock is in use by another request.
// The Grant must be released when the write ends.
func (s *Store) Acquire(ctx context.Context, user string, now time.Time, targets []Target, presented []string) (*Grant, error) {
	var hold, transient []string
	err := s.inUserTx(ctx, user, func(q *db.Queries) error {
		var fresh []db.InsertDavLockParams
		for _, t := range targets {
			t.Path = clean(t.Path)
			near, err := q.DavLocksNear(ctx, db.DavLocksNearParams{UserID: user, Now: now, Path: t.Path})
			if err != nil {
				return fmt.Errorf("reading locks: %w", err)
			}
			// The resources whose locks matter: the target, and for a tree
			// every locked resource below it.
			roots := []string{t.Path}
			for _, l := range near {
				if t.Tree && below(l.Root, t.Path) && !slices.Contains(roots, l.Root) {
					roots = append(roots, l.Root)
				}
			}
			var refusing []db.DavLock
			for _, r := range roots {
				refusing = append(refusing, unsatisfied(near, r, presented)...)
			}
			if len(refusing) > 0 {
				return conflict(refusing, now)
			}
			covered := false
			for _, l := range near {
				if !slices.Contains(presented, l.Token) || !(covers(l, t.Path) || (t.Tree && below(l.Root, t.Path))) {
					continue
				}
				covered = covered || covers(l, t.Path)
				if !l.Transient && !slices.Contains(hold, l.Token) {
					hold = append(hold, l.Token)
				}
			}
			if !covered {
				fresh = append(fresh, db.InsertDavLockParams{
					Token: newToken(), UserID: user, Root: t.Path, ZeroDepth: !t.Tree, Transient: true,
					ExpiresAt: now.Add(s.lease()),
				})
			}
		}
		if len(hold) > 0 {
			got, err := q.HoldDavLocks(ctx, db.HoldDavLocksParams{UserID: user, Tokens: hold, Now: now, Until: now.Add(s.lease())})
			if err != nil {
				return fmt.Errorf("holding locks: %w", err)
			}
			if len(got) != len(hold) {
				return ErrHeld
			}
		}
		for _, f := range fresh {
			if err := q.InsertDavLock(ctx, f); err != nil {
				return fmt.Errorf("taking a transient lock: %w", err)
			}
			transient = append(transient, f.Token)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("acquiring locks", err)
	}
	return s.grant(user, append(hold, transient...), transient), nil
}

// Grant is what one write holds: presented locks and transient ones. It is
// renewed in the background until Release.
type Grant struct {
	s         *Store
	user      string
	tokens    []string
	transient []string
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
}

func (s *Store) grant(user string, tokens, transient []string) *Grant {
	g := &Grant{s: s, user: user, tokens: tokens, transient: transient, stop: make(chan struct{}), done: make(chan struct{})}
	if len(tokens) == 0 {
		close(g.done)
		return g
	}
	go g.renew()
	return g
}

// Tokens are the grant's own transient lock tokens: a later Acquire of the
// same request presents them, so its targets do not conflict with each other.
func (g *Grant) Tokens() []string { return g.transient }

// renew extends the grant's leases every third of the lease until Release.
func (g *Grant) renew() {
	defer close(g.done)
	lease := g.s.lease()
	t := time.NewTicker(lease / 3)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), lease/3)
			err := db.New(g.s.Pool).RenewDavGrant(ctx, db.RenewDavGrantParams{UserID: g.user, Tokens: g.tokens, Until: time.Now().Add(lease)})
			cancel()
			if err != nil {
				g.s.logger().Warn("renewing WebDAV lock leases failed; they expire unless the next renewal works", "user", g.user, "err", err)
			}
		}
	}
}

// Release ends the write: holds are cleared and transient locks removed. It
// runs detached from the request (which may be over); if it fails, the
// leases end by themselves.
func (g *Grant) Release() {
	g.once.Do(func() {
		close(g.stop)
		<-g.done
		if len(g.tokens) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q := db.New(g.s.Pool)
		err := q.ReleaseDavHolds(ctx, db.ReleaseDavHoldsParams{UserID: g.user, Tokens: g.tokens})
		if err == nil && len(g.transient) > 0 {
			err = q.DeleteTransientDavLocks(ctx, db.DeleteTransientDavLocksParams{UserID: g.user, Tokens: g.transient})
		}
		if err != nil {
			g.s.logger().Warn("releasing WebDAV locks failed; their leases end by themselves", "user", g.user, "err", err)
		}
	})
}

// unsatisfied returns the locks covering p that refuse a write to p: every
// exclusive lock whose token was not presented, and the shared locks when
// none of theirs was (each holder of a shared lock may write). None: the
// write presented what the locks ask for.
func unsatisfied(locks []db.DavLock, p string, presented []string) []db.DavLock {
	var refusing, shared []db.DavLock
	sharedPresented := false
	for _, l := range locks {
		if !covers(l, p) {
			continue
		}
		ok := slices.Contains(presented, l.Token)
		switch {
		case l.Shared:
			shared, sharedPresented = append(shared, l), sharedPresented || ok
		case !ok:
			refusing = append(refusing, l)
		}
	}
	if !sharedPresented {
		refusing = append(refusing, shared...)
	}
	return refusing
}

// covers reports whether lock l covers path p.
func covers(l db.DavLock, p string) bool {
	return l.Root == p || (!l.ZeroDepth && below(p, l.Root))
}

// below reports whether p is strictly below dir.
func below(p, dir string) bool {
	if dir == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, dir+"/")
}

func clean(p string) string { return path.Clean("/" + p) }

func newToken() string { return "urn:uuid:" + uuid.NewString() }

func fromRow(r db.DavLock) Lock {
	return Lock{Token: r.Token, Root: r.Root, ZeroDepth: r.ZeroDepth, Shared: r.Shared, OwnerXML: r.OwnerXml,
		Timeout: time.Duration(r.TimeoutS) * time.Second, ExpiresAt: r.ExpiresAt}
}

// wrap keeps the sentinel errors bare (callers compare them) and wraps the rest.
func wrap(what string, err error) error {
	if err == nil || errors.Is(err, ErrLocked) || errors.Is(err, ErrNoSuchLock) || errors.Is(err, ErrHeld) || errors.Is(err, ErrTooManyLocks) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}
