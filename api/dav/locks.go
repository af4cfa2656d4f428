package dav

import (
	"sync"

	"golang.org/x/net/webdav"
)

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
	byUser map[string]webdav.LockSystem
}

// For returns the user's lock system.
func (l *Locks) For(userID string) webdav.LockSystem {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byUser == nil {
		l.byUser = map[string]webdav.LockSystem{}
	}
	ls, ok := l.byUser[userID]
	if !ok {
		ls = webdav.NewMemLS()
		l.byUser[userID] = ls
	}
	return ls
}
