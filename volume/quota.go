package volume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/threadbox/threadbox/db"
)

// Quota keeps volumes.used_bytes in step with the volume and decides whether
// writes fit.
//
// Accounting: writes and deletes that go through threadbox adjust used_bytes
// by their exact delta. Anything threadbox cannot see cheaply (agents writing
// in their own threads, recursive deletes, a first use) is picked up by
// re-measuring the volume (Measure: `du -sb` in the files sandbox). A
// measurement is taken before a quota decision when the last one is unknown
// or older than MaxAge, and always before refusing a write, so a stale count
// never denies a write that fits. Agents themselves are not limited: Daytona
// volumes have no size, so an agent can push a volume past its quota, after
// which threadbox refuses writes (507) until space is freed.
type Quota struct {
	Queries *db.Queries
	UserID  string
	Limit   int64
	// Measure returns the volume's real usage in bytes.
	Measure func(ctx context.Context) (int64, error)
	// MaxAge bounds how stale a measurement may be for a decision.
	MaxAge time.Duration
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time

	mu       sync.Mutex
	measured bool // measured during this Quota's life (one request)
}

func (q *Quota) now() time.Time {
	if q.Now != nil {
		return q.Now()
	}
	return time.Now()
}

// Used returns the volume's usage, measuring first when the stored figure is
// unknown or older than MaxAge.
func (q *Quota) Used(ctx context.Context) (int64, error) {
	row, err := q.Queries.VolumeUsage(ctx, q.UserID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("reading volume usage: %w", err)
	}
	if err == nil && row.UsedMeasuredAt != nil && q.now().Sub(*row.UsedMeasuredAt) <= q.MaxAge {
		return row.UsedBytes, nil
	}
	return q.remeasure(ctx)
}

func (q *Quota) remeasure(ctx context.Context) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	used, err := q.Measure(ctx)
	if err != nil {
		return 0, fmt.Errorf("measuring volume usage: %w", err)
	}
	if _, err := q.Queries.SetVolumeUsage(ctx, db.SetVolumeUsageParams{UserID: q.UserID, UsedBytes: used}); err != nil {
		return 0, fmt.Errorf("recording volume usage: %w", err)
	}
	q.measured = true
	return used, nil
}

// Available returns how many more bytes may be written. replacing is the
// size of a file the write replaces (its bytes are freed by the write).
func (q *Quota) Available(ctx context.Context, replacing int64) (int64, error) {
	used, err := q.Used(ctx)
	if err != nil {
		return 0, err
	}
	avail := q.Limit - used + replacing
	if avail <= 0 && !q.measured {
		// Never refuse on a count that may be stale.
		if used, err = q.remeasure(ctx); err != nil {
			return 0, err
		}
		avail = q.Limit - used + replacing
	}
	return max(avail, 0), nil
}

// Check returns ErrQuotaExceeded unless n more bytes fit.
func (q *Quota) Check(ctx context.Context, n, replacing int64) error {
	avail, err := q.Available(ctx, replacing)
	if err != nil {
		return err
	}
	if n > avail && !q.measured {
		used, err := q.remeasure(ctx)
		if err != nil {
			return err
		}
		avail = q.Limit - used + replacing
	}
	if n > avail {
		return fmt.Errorf("%w: %d bytes do not fit in the %d bytes left", ErrQuotaExceeded, n, max(avail, 0))
	}
	return nil
}

// Add records a write (delta > 0) or a delete (delta < 0).
func (q *Quota) Add(ctx context.Context, delta int64) error {
	if delta == 0 {
		return nil
	}
	if _, err := q.Queries.AddVolumeUsage(ctx, db.AddVolumeUsageParams{UserID: q.UserID, Delta: delta}); err != nil {
		return fmt.Errorf("recording volume usage: %w", err)
	}
	return nil
}

// Invalidate marks the stored usage unknown (after a change whose size we do
// not know, such as a recursive delete), so the next decision measures.
func (q *Quota) Invalidate(ctx context.Context) error {
	if err := q.Queries.InvalidateVolumeUsage(ctx, q.UserID); err != nil {
		return fmt.Errorf("invalidating volume usage: %w", err)
	}
	return nil
}
