package dav

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/webdav"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/davlock"
)

// MaxLocksPerUser bounds the live locks one user may hold (each is a row in
// PostgreSQL, with its owner XML, for up to MaxLockTimeout).
const MaxLocksPerUser = davlock.DefaultMaxPerUser

// ErrTooManyLocks is a LOCK refused because the user holds MaxLocksPerUser
// live locks already: 429, as the contract answers every per-user limit.
var ErrTooManyLocks = &apierr.Error{Status: http.StatusTooManyRequests, Code: "too_many_locks",
	Message: "too many live WebDAV locks; unlock some or wait for them to expire", RetryAfter: time.Minute}

// errLocked is a write to a resource locked by a lock it did not present,
// found after its If header held (the engine would have said 412).
var errLocked = &apierr.Error{Status: http.StatusLocked, Code: "locked",
	Message: "the resource is locked; present its lock token in the If header"}

// requestLocks is the engine's webdav.LockSystem for one request, over the
// shared lock store (davlock): locks are in PostgreSQL, so every replica
// sees them. The engine uses it only to guard writes (LOCK is served by
// the wrapper, see lock.go):
//   - Confirm (a write with an If header) checks the request's own
//     resources — not the list's resource tag, which names the lock rather
//     than what is written — against the tokens the whole If header
//     presented (the wrapper has already evaluated it), and holds the
//     presented locks until the engine releases them.
//   - Create (a write without an If header: the engine's temporary lock on
//     each resource it changes) takes a transient lock, which Unlock drops.
//   - Unlock otherwise is UNLOCK, addressed to the request's resource.
//
// Store failures are noted on the FS, so the wrapper answers them (503)
// instead of the engine's 500.
type requestLocks struct {
	ctx   context.Context
	store *davlock.Store
	user  string
	// src and dst are the request's volume paths (dst: COPY and MOVE).
	src, dst string
	// tree: the request changes everything below its resources (DELETE,
	// MOVE, COPY), so locks below them must have been presented too.
	tree      bool
	presented []string
	fs        *FS
	// header is the response's: a 423 caused by another write in progress
	// gets its Retry-After (see lockedRetryAfter).
	header http.Header

	mu     sync.Mutex
	grants map[string]*davlock.Grant // transient lock token → its grant
	own    []string                  // this request's transient lock tokens
}

var _ webdav.LockSystem = (*requestLocks)(nil)

func (l *requestLocks) tokens() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append(slices.Clone(l.presented), l.own...)
}

// Confirm implements webdav.LockSystem. The conditions are ignored: the
// wrapper evaluated the whole If header before the engine ran.
func (l *requestLocks) Confirm(now time.Time, name0, name1 string, _ ...webdav.Condition) (func(), error) {
	var targets []davlock.Target
	if name0 != "" {
		targets = append(targets, davlock.Target{Path: l.src, Tree: l.tree})
	}
	if name1 != "" {
		targets = append(targets, davlock.Target{Path: l.dst, Tree: l.tree})
	}
	g, err := l.store.Acquire(l.ctx, l.user, now, targets, l.tokens())
	switch {
	case errors.Is(err, davlock.ErrHeld):
		return nil, webdav.ErrConfirmationFailed // in use by another request: 412, as the engine answers
	case errors.Is(err, davlock.ErrLocked):
		e := *errLocked
		e.RetryAfter = lockedRetryAfter(err)
		return nil, l.fs.note(&e)
	case err != nil:
		return nil, l.fs.note(err)
	}
	return g.Release, nil
}

// Create implements webdav.LockSystem for the engine's temporary locks.
func (l *requestLocks) Create(now time.Time, d webdav.LockDetails) (string, error) {
	g, err := l.store.Acquire(l.ctx, l.user, now, []davlock.Target{{Path: d.Root, Tree: l.tree}}, l.tokens())
	switch {
	case errors.Is(err, davlock.ErrLocked):
		setRetryAfter(l.header, err)
		return "", webdav.ErrLocked
	case err != nil:
		return "", l.fs.note(err)
	}
	// The engine only hands the token back to Unlock: any unique name does.
	token := "urn:uuid:" + uuid.NewString()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.grants == nil {
		l.grants = map[string]*davlock.Grant{}
	}
	l.grants[token] = g
	l.own = append(l.own, g.Tokens()...)
	return token, nil
}

// Refresh implements webdav.LockSystem (the wrapper serves LOCK, so the
// engine does not call it).
func (l *requestLocks) Refresh(now time.Time, token string, d time.Duration) (webdav.LockDetails, error) {
	lk, err := l.store.Refresh(l.ctx, l.user, now, token, l.src, d)
	if err != nil {
		return webdav.LockDetails{}, l.engineErr(err)
	}
	return webdav.LockDetails{Root: lk.Root, Duration: lk.Timeout, OwnerXML: lk.OwnerXML, ZeroDepth: lk.ZeroDepth}, nil
}

// Unlock implements webdav.LockSystem: the end of a temporary lock, or UNLOCK.
func (l *requestLocks) Unlock(now time.Time, token string) error {
	l.mu.Lock()
	g, ok := l.grants[token]
	delete(l.grants, token)
	l.mu.Unlock()
	if ok {
		g.Release()
		return nil
	}
	return l.engineErr(l.store.Unlock(l.ctx, l.user, now, token, l.src))
}

// engineErr turns store errors into the engine's (which picks the status).
func (l *requestLocks) engineErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, davlock.ErrNoSuchLock):
		return webdav.ErrNoSuchLock
	case errors.Is(err, davlock.ErrHeld), errors.Is(err, davlock.ErrLocked):
		return webdav.ErrLocked
	}
	return l.fs.note(err)
}

// releaseAll drops what the engine left held when the request ends (it
// releases everything itself; this is the safety net for a panic).
func (l *requestLocks) releaseAll() {
	l.mu.Lock()
	grants := l.grants
	l.grants = nil
	l.mu.Unlock()
	for _, g := range grants {
		g.Release()
	}
}

// lockedRetryAfter is when a write refused 423 may try again: for a conflict
// with other writes in progress only (davlock.LockedError), the end of their
// current lease, by which a dead writer's lock is gone; 0 (no Retry-After)
// for a client's LOCK, which lasts until that client unlocks.
func lockedRetryAfter(err error) time.Duration {
	var le *davlock.LockedError
	if errors.As(err, &le) {
		return le.RetryAfter
	}
	return 0
}

// setRetryAfter sets Retry-After (whole seconds, rounded up) on a 423 the
// engine or the LOCK handler writes itself, when err says when to retry.
func setRetryAfter(h http.Header, err error) {
	if d := lockedRetryAfter(err); d > 0 && h != nil {
		h.Set("Retry-After", apierr.RetryAfterValue(d))
	}
}
