// Package guardcache keeps, per serve replica, the verdicts of the thread
// guard (the thread row read before every use of a thread's sandbox: is it
// live, and which life is it) so a warm exec does not read PostgreSQL.
//
// A verdict is trusted only while this replica listens to PostgreSQL's
// notifications of guard changes (channel Channel, sent by a trigger on
// the threads table when a thread is deleted, created again or removed:
// migration 00180), and for at most MaxStale after the read that produced
// it. So a delete through any replica, or with SQL, is refused by every
// replica as soon as the notification arrives, and at the latest MaxStale
// later when notifications are lost (a listener whose connection died
// without an error). Failures are never cached.
package guardcache

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the notification channel of guard changes; the payload is
// Key(user, thread). The trigger of migration 00180 spells both the same way.
const Channel = "threadbox_thread_guard"

// MaxStale bounds how long a cached verdict is trusted, counted from before
// the read that produced it: the bound on a delete reaching another replica
// when its notification is lost. The contract's bound for a deleted thread
// on another replica is one second; half of it leaves room for scheduling.
const MaxStale = 500 * time.Millisecond

// maxEntries bounds the memory of the cache; when full it starts over.
const maxEntries = 100_000

// reconnectDelay is the pause before the listener connects again.
const reconnectDelay = time.Second

// Key is the cache key, and the notification payload, of a user's thread.
// Thread ids never contain '/' (validThreadID), user ids are UUIDs.
func Key(userID, threadID string) string { return userID + "/" + threadID }

// Cache is a replica's guard verdicts. The zero value is not usable: New.
type Cache struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	now    func() time.Time
	stop   context.CancelFunc
	done   chan struct{}
	maxAge time.Duration

	mu        sync.Mutex
	listening bool
	entries   map[string]entry
	// loading tracks the reads in flight per key: a notification (or a
	// change of the listener's state) during a read marks it stale, so a
	// verdict read before a delete is never stored after the delete's
	// notification was handled.
	loading map[string]*load
}

type entry struct {
	verdict string
	until   time.Time
}

type load struct {
	n     int
	stale bool
}

// Options configure New.
type Options struct {
	// MaxStale overrides the package's MaxStale (tests that show the
	// notification alone refuses a deleted thread set it to hours).
	MaxStale time.Duration
	Logger   *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// New starts the cache's listener on a connection of its own (not one of
// pool's). Close stops it.
func New(pool *pgxpool.Pool, o Options) *Cache {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxStale <= 0 {
		o.MaxStale = MaxStale
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &Cache{
		pool: pool, log: o.Logger.With("component", "guardcache"), now: o.Now, stop: stop,
		done: make(chan struct{}), maxAge: o.MaxStale,
		entries: map[string]entry{}, loading: map[string]*load{},
	}
	go c.listen(ctx)
	return c
}

// Close stops the listener and waits for it.
func (c *Cache) Close() {
	c.stop()
	<-c.done
}

// Get returns key's verdict: from the cache when it is trusted, else from
// read (whose result is cached when it succeeded and nothing invalidated
// key while it ran).
func (c *Cache) Get(ctx context.Context, key string, read func(context.Context) (string, error)) (string, error) {
	started := c.now()
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && c.listening && started.Before(e.until) {
		c.mu.Unlock()
		return e.verdict, nil
	}
	l := c.loading[key]
	if l == nil {
		l = &load{}
		c.loading[key] = l
	}
	l.n++
	c.mu.Unlock()

	v, err := read(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && c.listening && !l.stale {
		if len(c.entries) >= maxEntries {
			c.entries = map[string]entry{}
		}
		c.entries[key] = entry{verdict: v, until: started.Add(c.maxAge)}
	}
	if l.n--; l.n == 0 {
		delete(c.loading, key)
	}
	return v, err
}

// Forget drops key's verdict at once (the replica that deletes a thread
// does not wait for its own notification).
func (c *Cache) Forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(key)
}

func (c *Cache) forgetLocked(key string) {
	delete(c.entries, key)
	if l := c.loading[key]; l != nil {
		l.stale = true
	}
}

// setListening records the listener's state. Either change forgets
// everything: before LISTEN took effect, a delete may have been missed.
func (c *Cache) setListening(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listening = on
	c.entries = map[string]entry{}
	for _, l := range c.loading {
		l.stale = true
	}
}

// Listening reports whether verdicts are being cached (tests).
func (c *Cache) Listening() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listening
}

func (c *Cache) listen(ctx context.Context) {
	defer close(c.done)
	for ctx.Err() == nil {
		connected, err := c.listenOnce(ctx)
		c.setListening(false)
		if ctx.Err() != nil {
			return
		}
		// Once per outage: while PostgreSQL is down, every retry fails.
		if connected {
			c.log.Warn("thread guard listener lost its connection; verdicts are read from PostgreSQL until it is back", "err", err)
		} else {
			c.log.Debug("thread guard listener cannot connect", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(reconnectDelay):
		}
	}
}

// listenOnce listens until its connection fails; connected reports whether
// it got as far as listening.
func (c *Cache) listenOnce(ctx context.Context) (connected bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, c.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return false, err
	}
	c.setListening(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		c.Forget(n.Payload)
	}
}
