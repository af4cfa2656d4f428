package dav

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/net/webdav"
)

// MaxLocksPerUser bounds the live locks one user may hold (each lives in
// this process's memory, with its owner XML, for up to MaxLockTimeout).
const MaxLocksPerUser = 1000

// ErrTooManyLocks is a LOCK refused because the user holds MaxLocksPerUser
// live locks already (429).
var ErrTooManyLocks = errors.New("too many live locks")

// Locks holds one in-memory webdav.LockSystem per user, so a lock path never
// collides with another user's same-named file and one user cannot see or
// break another's locks.
//
// Locks live in this process's memory only: they are lost on restart (a
// client's next request with a stale token gets 412 and it re-locks), and
// they are not shared between replicas of `threadbox serve`. Scaled out, the
// load balancer must route a user's /dav/ traffic to one replica (sticky by
// user or by Authorization); a PostgreSQL-backed LockSystem would lift that.
type Locks struct {
	mu     sync.Mutex
	byUser map[string]*userLocks
}

// For returns the user's lock system.
func (l *Locks) For(userID string) webdav.LockSystem {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byUser == nil {
		l.byUser = map[string]*userLocks{}
	}
	ls, ok := l.byUser[userID]
	if !ok {
		ls = &userLocks{LockSystem: webdav.NewMemLS(), expiry: map[string]time.Time{}}
		l.byUser[userID] = ls
	}
	return ls
}

// userLocks is a user's lock system with a count of live locks: it mirrors
// the expiry of every token it handed out (the engine's memLS does not
// expose its own) and refuses new locks past MaxLocksPerUser.
type userLocks struct {
	webdav.LockSystem

	mu     sync.Mutex
	expiry map[string]time.Time // zero: no expiry
}

func (u *userLocks) Create(now time.Time, details webdav.LockDetails) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for tok, exp := range u.expiry {
		if !exp.IsZero() && !exp.After(now) {
			delete(u.expiry, tok)
		}
	}
	if len(u.expiry) >= MaxLocksPerUser {
		return "", ErrTooManyLocks
	}
	tok, err := u.LockSystem.Create(now, details)
	if err != nil {
		return "", err
	}
	u.expiry[tok] = expiryOf(now, details.Duration)
	return tok, nil
}

func (u *userLocks) Refresh(now time.Time, token string, duration time.Duration) (webdav.LockDetails, error) {
	ld, err := u.LockSystem.Refresh(now, token, duration)
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case err == nil:
		u.expiry[token] = expiryOf(now, duration)
	case errors.Is(err, webdav.ErrNoSuchLock):
		delete(u.expiry, token)
	}
	return ld, err
}

func (u *userLocks) Unlock(now time.Time, token string) error {
	err := u.LockSystem.Unlock(now, token)
	if err == nil || errors.Is(err, webdav.ErrNoSuchLock) {
		u.mu.Lock()
		delete(u.expiry, token)
		u.mu.Unlock()
	}
	return err
}

func expiryOf(now time.Time, d time.Duration) time.Time {
	if d < 0 {
		return time.Time{}
	}
	return now.Add(d)
}

// noteLocks reports a refused LOCK on the request's FS, so the wrapper
// answers 429 instead of the engine's 500.
type noteLocks struct {
	webdav.LockSystem
	fs *FS
}

func (n noteLocks) Create(now time.Time, details webdav.LockDetails) (string, error) {
	tok, err := n.LockSystem.Create(now, details)
	if errors.Is(err, ErrTooManyLocks) {
		n.fs.note(err)
	}
	return tok, err
}
