package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/threadbox/threadbox/db"
)

// Sweeping: a reservation whose writer died (or stopped renewing it)
// expires. One that recorded no files only held room, and is deleted; one
// that did is settled in the user's volume (see settle: the old file goes
// back, or the new one stays and the old is deleted; the spool goes) and
// then deleted, and the user's usage is re-measured at the next decision.
const (
	// sweepBatch bounds how many reservations one sweep settles.
	sweepBatch = 100
	// sweepClaim is how long a sweep owns the reservations it settles, so
	// the sweeps of other replicas skip them.
	sweepClaim = 10 * time.Minute
)

// Sweep settles the expired reservations of dead writers (see above),
// reaching each user's volume through volumes. It returns how many it
// settled.
func Sweep(ctx context.Context, pool *pgxpool.Pool, volumes Opener, now time.Time) (int, error) {
	q := db.New(pool)
	if _, err := q.DeleteBareExpiredReservations(ctx, now); err != nil {
		return 0, fmt.Errorf("dropping expired reservations: %w", err)
	}
	rows, err := q.ClaimExpiredReservations(ctx, db.ClaimExpiredReservationsParams{
		ClaimSeconds: sweepClaim.Seconds(), Before: now, MaxRows: sweepBatch})
	if err != nil {
		return 0, fmt.Errorf("claiming expired reservations: %w", err)
	}
	byUser := map[string][]db.VolumeReservation{}
	for _, r := range rows {
		byUser[r.UserID] = append(byUser[r.UserID], r)
	}
	settled := 0
	var errs []error
	for user, rs := range byUser {
		err := volumes.Use(ctx, user, UseOptions{}, func(ctx context.Context, v *Volume) error {
			for _, r := range rs {
				if st := leftoverOf(r); st != nil {
					if _, err := v.settle(ctx, *st); err != nil {
						return fmt.Errorf("settling write %s of %s: %w", r.ID, user, err)
					}
				}
				if err := q.DeleteVolumeReservation(ctx, r.ID); err != nil {
					return fmt.Errorf("dropping reservation %s: %w", r.ID, err)
				}
				settled++
			}
			if v.Quota == nil {
				return nil
			}
			return v.Quota.Invalidate(ctx)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return settled, errors.Join(errs...)
}

// StartJanitor sweeps every interval until the returned stop is called.
func (s *Service) StartJanitor(interval time.Duration, log *slog.Logger) (stop func()) {
	return every(interval, func(ctx context.Context) {
		n, err := Sweep(ctx, s.Pool, s, time.Now())
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "sweeping abandoned writes", "err", err)
		}
		if n > 0 {
			log.InfoContext(ctx, "settled abandoned writes", "count", n)
		}
	})
}

// every runs fn every interval, in a goroutine of its own, until the
// returned stop is called (stop waits for a run in progress).
func every(interval time.Duration, fn func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	}()
	return func() { cancel(); <-done }
}
