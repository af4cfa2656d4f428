package dav

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/threadbox/threadbox/api/apierr"
	"golang.org/x/net/webdav"
)

// MaxLocksPerUser bounds the live locks one user may hold (each lives in
// this process's memory, with its owner XML, for up to MaxLockTimeout).
const MaxLocksPerUser = 1000

// ErrTooManyLocks is a LOCK refused because the user holds MaxLocksPerUser
// live locks already: 429, as the contract answers every per-user limit.
var ErrTooManyLocks = &apierr.Error{Status: http.StatusTooManyRequests, Code: "too_many_locks",
	Message: "too many live WebDAV locks; unlock some or wait for them to expire", RetryAfter: time.Minute}

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
		ls = &userLocks{LockSystem: webdav.NewMemLS(), expiry: map[string]time.Time{}, engine: map[string]string{}}
		l.byUser[userID] = ls
	}
	return ls
}

// userLocks is a user's lock system with a count of live locks: it mirrors
// the expiry of every token it handed out (the engine's memLS does not
// expose its own) and refuses new locks past MaxLocksPerUser. It also hands
// out lock tokens that are URIs ("urn:uuid:…", RFC 4918 §6.5) in place of
// the engine's bare counters, translating them back on every call.
type userLocks struct {
	webdav.LockSystem

	mu     sync.Mutex
	expiry map[string]time.Time // by public token; zero: no expiry
	engine map[string]string    // public token → the engine's token
}

// engineToken translates a client's token; an unknown one is passed on as
// it is, which the engine does not know either.
func (u *userLocks) engineToken(token string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if t, ok := u.engine[token]; ok {
		return t
	}
	return token
}

func (u *userLocks) forget(token string) {
	delete(u.expiry, token)
	delete(u.engine, token)
}

// Confirm implements webdav.LockSystem with the conditions' tokens translated.
func (u *userLocks) Confirm(now time.Time, name0, name1 string, conditions ...webdav.Condition) (func(), error) {
	translated := make([]webdav.Condition, len(conditions))
	for i, c := range conditions {
		if c.Token != "" {
			c.Token = u.engineToken(c.Token)
		}
		translated[i] = c
	}
	return u.LockSystem.Confirm(now, name0, name1, translated...)
}

func (u *userLocks) Create(now time.Time, details webdav.LockDetails) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for tok, exp := range u.expiry {
		if !exp.IsZero() && !exp.After(now) {
			u.forget(tok)
		}
	}
	if len(u.expiry) >= MaxLocksPerUser {
		return "", ErrTooManyLocks
	}
	inner, err := u.LockSystem.Create(now, details)
	if err != nil {
		return "", err
	}
	tok := "urn:uuid:" + uuid.NewString()
	u.engine[tok] = inner
	u.expiry[tok] = expiryOf(now, details.Duration)
	return tok, nil
}

func (u *userLocks) Refresh(now time.Time, token string, duration time.Duration) (webdav.LockDetails, error) {
	ld, err := u.LockSystem.Refresh(now, u.engineToken(token), duration)
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case err == nil:
		u.expiry[token] = expiryOf(now, duration)
	case errors.Is(err, webdav.ErrNoSuchLock):
		u.forget(token)
	}
	return ld, err
}

func (u *userLocks) Unlock(now time.Time, token string) error {
	err := u.LockSystem.Unlock(now, u.engineToken(token))
	if err == nil || errors.Is(err, webdav.ErrNoSuchLock) {
		u.mu.Lock()
		u.forget(token)
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
