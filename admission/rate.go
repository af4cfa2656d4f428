package admission

import (
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"
)

// maxBuckets bounds the rate limiter's memory. Beyond it, buckets that are
// full again (a key idle long enough to have its whole burst back, no
// different from a new bucket) are dropped.
const maxBuckets = 10_000

// rateLimiter is a token bucket per API key, in this replica's memory.
type rateLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[uuid.UUID]*rate.Limiter
}

// newRateLimiter returns nil when rps is 0 (no limit).
func newRateLimiter(rps float64, burst int, now func() time.Time) *rateLimiter {
	if rps <= 0 {
		return nil
	}
	return &rateLimiter{limit: rate.Limit(rps), burst: max(burst, 1), now: now, buckets: map[uuid.UUID]*rate.Limiter{}}
}

func (r *rateLimiter) allow(key uuid.UUID) *Error {
	now := r.now()
	res := r.bucket(key, now).ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now) // a refused request takes nothing from the bucket
		return &Error{Limit: RateLimit, Max: float64(r.limit), RetryAfter: d}
	}
	return nil
}

func (r *rateLimiter) bucket(key uuid.UUID, now time.Time) *rate.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.buckets[key]; ok {
		return b
	}
	if len(r.buckets) >= maxBuckets {
		for k, b := range r.buckets {
			if b.TokensAt(now) >= float64(r.burst) {
				delete(r.buckets, k)
			}
		}
	}
	b := rate.NewLimiter(r.limit, r.burst)
	r.buckets[key] = b
	return b
}
