package auth

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"
)

// CacheTTL is how long a replica trusts a verification it made. It is the
// bound on revocation: a key revoked through any replica (or with SQL) is
// refused by every replica at most CacheTTL later, because an entry's age is
// counted from before the query that read it. Half a second keeps that
// bound under the contract's one second with room for clock and scheduling
// slack, while an active key still costs one query per replica per half
// second instead of one per request.
const CacheTTL = 500 * time.Millisecond

// TouchInterval is how often a key's last_used_at is written, at most:
// per replica by the cache, and across replicas by the query itself.
const TouchInterval = time.Minute

// verifyTimeout bounds the query a cache miss shares among the requests
// that wait for it (it runs detached from the first one's context).
const verifyTimeout = 5 * time.Second

// maxCacheEntries bounds the memory of the cache (and of its touch record);
// when full, expired entries are swept, and if that frees nothing the cache
// starts over.
const maxCacheEntries = 10_000

// Cache verifies keys for the API's hot path: a key verified less than
// CacheTTL ago is trusted without asking PostgreSQL, concurrent misses for
// one key share one query, and last_used_at is recorded at most once per
// TouchInterval, in the background. Failures are never cached: a key
// created a moment ago verifies at once. Close waits for pending touches.
type Cache struct {
	store *Store
	log   *slog.Logger
	now   func() time.Time
	sf    singleflight.Group

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cacheEntry
	touched map[uuid.UUID]time.Time
	closed  bool
	wg      sync.WaitGroup
}

type cacheEntry struct {
	p Principal
	// until is when the entry stops being trusted: CacheTTL after the query
	// began, or the key's expiry when that is sooner.
	until time.Time
}

// NewCache returns a cache over store. now is the clock (tests); time.Now
// when nil.
func NewCache(store *Store, log *slog.Logger, now func() time.Time) *Cache {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{
		store: store, log: log, now: now,
		entries: map[[sha256.Size]byte]cacheEntry{},
		touched: map[uuid.UUID]time.Time{},
	}
}

// Verify returns the principal of a live key, or ErrInvalidKey.
func (c *Cache) Verify(ctx context.Context, key string) (Principal, error) {
	h := sha256.Sum256([]byte(key))
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[h]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		c.touch(e.p.KeyID, now)
		return e.p, nil
	}
	for {
		v, err, _ := c.sf.Do(string(h[:]), func() (any, error) {
			start := c.now() // before the query: the entry is never younger than what it read
			qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), verifyTimeout)
			defer cancel()
			p, expires, err := c.store.verify(qctx, key)
			if err != nil {
				return verified{start: start}, err
			}
			if !expires.IsZero() && !start.Before(expires) {
				return verified{start: start}, ErrInvalidKey // expired by this replica's clock, if not yet by the database's
			}
			until := start.Add(CacheTTL)
			if !expires.IsZero() && expires.Before(until) {
				until = expires
			}
			c.put(h, cacheEntry{p: p, until: until}, start)
			return verified{p: p, start: start}, nil
		})
		res := v.(verified)
		if res.start.Add(CacheTTL).Before(now) {
			// This request joined a query that began more than CacheTTL before
			// it arrived (a slow database): its answer may predate a revoke by
			// more than the bound. Ask again; the next query begins after now,
			// so this happens at most once.
			c.sf.Forget(string(h[:]))
			continue
		}
		if err != nil {
			return Principal{}, err
		}
		c.touch(res.p.KeyID, now)
		return res.p, nil
	}
}

// verified is what one shared verification found, and when its query began.
type verified struct {
	p     Principal
	start time.Time
}

func (c *Cache) put(h [sha256.Size]byte, e cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCacheEntries {
		for k, old := range c.entries {
			if !now.Before(old.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCacheEntries {
			clear(c.entries)
		}
	}
	c.entries[h] = e
}

// touch records a use of the key in last_used_at when this replica has not
// done so for TouchInterval. The write runs in the background: a request
// never waits for it, and a failure is only logged.
func (c *Cache) touch(id uuid.UUID, now time.Time) {
	c.mu.Lock()
	if c.closed || now.Sub(c.touched[id]) < TouchInterval {
		c.mu.Unlock()
		return
	}
	if len(c.touched) >= maxCacheEntries {
		for k, at := range c.touched {
			if now.Sub(at) >= TouchInterval {
				delete(c.touched, k)
			}
		}
	}
	c.touched[id] = now
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.store.q.TouchAPIKey(ctx, id); err != nil {
			c.log.WarnContext(ctx, "recording api key use", "key_id", id, "err", err)
		}
	}()
}

// Close stops recording uses and waits for the writes in flight.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
}
