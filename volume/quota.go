package volume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/threadbox/threadbox/db"
)

// Quota keeps volumes.used_bytes in step with the volume and decides whether
// writes fit. One Quota serves one request.
//
// Accounting: writes and deletes that go through threadbox adjust used_bytes
// by their exact delta. Anything threadbox cannot see cheaply (agents writing
// in their own threads, recursive deletes, a first use) is picked up by
// re-measuring the volume (Measure: the sizes of its files, in a sandbox that
// mounts it). A measurement is taken before a quota decision when the last
// one is unknown or older than MaxAge, and always before refusing a write, so
// a stale count never denies a write that fits. Agents themselves are not
// limited: Daytona volumes have no size, so an agent can push a volume past
// its quota, after which threadbox refuses writes (507) until space is freed.
//
// Reservations: a write claims its bytes before its first byte is sent
// (Reserve), under a per-user lock in PostgreSQL, and the claim must fit
// together with the stored usage and every other live reservation of the
// user, so concurrent writers never share the same free space. The write is
// counted and its reservation dropped in one transaction (Reservation.Count).
type Quota struct {
	Pool   *pgxpool.Pool
	UserID string
	Limit  int64
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

func (q *Quota) queries() *db.Queries { return db.New(q.Pool) }

// Used returns the volume's usage, measuring first when the stored figure is
// unknown or older than MaxAge.
func (q *Quota) Used(ctx context.Context) (int64, error) {
	row, err := q.queries().VolumeUsage(ctx, q.UserID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("reading volume usage: %w", err)
	}
	if err == nil && row.UsedMeasuredAt != nil && q.now().Sub(*row.UsedMeasuredAt) <= q.MaxAge {
		return row.UsedBytes, nil
	}
	return q.remeasure(ctx)
}

// remeasure measures the volume and stores the result, unless a write was
// counted while the measurement ran or is committing as it ends (it may or
// may not be in it): then it measures once more, and failing again takes
// the larger of the measurement and the stored figure without storing
// either (never less than what is there).
func (q *Quota) remeasure(ctx context.Context) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qs := q.queries()
	var used int64
	for attempt := 0; attempt < 2; attempt++ {
		before, err := qs.VolumeUsage(ctx, q.UserID)
		noRow := errors.Is(err, pgx.ErrNoRows)
		if err != nil && !noRow {
			return 0, fmt.Errorf("reading volume usage: %w", err)
		}
		if used, err = q.Measure(ctx); err != nil {
			return 0, fmt.Errorf("measuring volume usage: %w", err)
		}
		q.measured = true
		if noRow {
			return used, nil
		}
		n, err := qs.SetMeasuredVolumeUsage(ctx, db.SetMeasuredVolumeUsageParams{
			UserID: q.UserID, UsedBytes: used, SeenVersion: before.UsageVersion})
		if err != nil {
			return 0, fmt.Errorf("recording volume usage: %w", err)
		}
		if n == 1 {
			return used, nil
		}
	}
	row, err := qs.VolumeUsage(ctx, q.UserID)
	if err != nil {
		return 0, fmt.Errorf("reading volume usage: %w", err)
	}
	return max(used, row.UsedBytes), nil
}

// Add records a write (delta > 0) or a delete (delta < 0) made without a
// reservation.
func (q *Quota) Add(ctx context.Context, delta int64) error {
	if delta == 0 {
		return nil
	}
	if _, err := q.queries().AddVolumeUsage(ctx, db.AddVolumeUsageParams{UserID: q.UserID, Delta: delta}); err != nil {
		return fmt.Errorf("recording volume usage: %w", err)
	}
	return nil
}

// Invalidate marks the stored usage unknown (after a change whose size we do
// not know, such as a recursive delete), so the next decision measures.
func (q *Quota) Invalidate(ctx context.Context) error {
	if err := q.queries().InvalidateVolumeUsage(ctx, q.UserID); err != nil {
		return fmt.Errorf("invalidating volume usage: %w", err)
	}
	return nil
}

// ReservationTTL is how long a write's reservation outlives the last renewal
// by its writer: a writer renews it every ReservationTTL/4 while it runs, so
// only a writer that died (or lost PostgreSQL for this long) lets it expire,
// after which the sweep settles its files.
const ReservationTTL = 10 * time.Minute

// ReserveOptions describe a reservation.
type ReserveOptions struct {
	// ID names the reservation; empty: a new random one. An upload uses its
	// own id, so its reservation can be found again by a later request.
	ID string
	// Need is the least the write must be able to write; Want is what it
	// would like to claim at once (Want < Need means Need). The claim is
	// Want when it fits, else as much as fits, but never less than Need.
	Need, Want int64
	// Credit is the size of a file the write replaces: its bytes are freed
	// when the write lands, so they count as room.
	Credit int64
	// Spool and Target are the write's files (volume paths), when known.
	Spool, Target string
	// TTL is the reservation's lifetime without renewal (ReservationTTL when
	// 0). KeepAlive renews it until the reservation ends; without it the
	// reservation lives TTL (an upload between its requests).
	TTL       time.Duration
	KeepAlive bool
}

// Reserve claims room for a write (see ReserveOptions), measuring the volume
// once before refusing. It fails with ErrQuotaExceeded when Need does not fit.
func (q *Quota) Reserve(ctx context.Context, o ReserveOptions) (*Reservation, error) {
	if o.TTL <= 0 {
		o.TTL = ReservationTTL
	}
	if o.ID == "" {
		o.ID = "w-" + randomHex(12)
	}
	r := &Reservation{q: q, id: o.ID, credit: o.Credit, ttl: o.TTL}
	if err := r.claimRoom(ctx, o.Need, max(o.Want, o.Need), o.Spool, o.Target); err != nil {
		return nil, err
	}
	if o.KeepAlive {
		r.keepAlive()
	}
	return r, nil
}

// Adopt takes over a reservation made earlier (an upload's, made when it was
// created) for the write that uses it, renewing it while the write runs. A
// previous attempt's files it still records are settled by the write first.
func (q *Quota) Adopt(ctx context.Context, id string) (*Reservation, error) {
	row, err := q.queries().GetVolumeReservation(ctx, db.GetVolumeReservationParams{ID: id, UserID: q.UserID})
	if err != nil {
		return nil, fmt.Errorf("reading reservation %s: %w", id, err)
	}
	r := &Reservation{q: q, id: id, claim: row.Bytes, ttl: ReservationTTL, leftover: leftoverOf(row)}
	if err := r.renew(ctx); err != nil {
		return nil, err
	}
	r.keepAlive()
	return r, nil
}

// Release drops the reservation id (a cancelled upload's) without counting
// anything.
func (q *Quota) Release(ctx context.Context, id string) error {
	if err := q.queries().DeleteVolumeReservation(ctx, id); err != nil {
		return fmt.Errorf("releasing reservation %s: %w", id, err)
	}
	return nil
}

// Reservation is room claimed for one write.
type Reservation struct {
	q        *Quota
	id       string
	claim    int64 // bytes the write may write
	credit   int64 // bytes of the file it replaces
	ttl      time.Duration
	leftover *commitState

	stopKeep func()
}

// ID names the reservation.
func (r *Reservation) ID() string { return r.id }

// Claimed is how many bytes the write may write.
func (r *Reservation) Claimed() int64 { return r.claim }

// Grow raises the claim to at least need bytes (want when it fits), for a
// write of unknown length that reached its claim. ErrQuotaExceeded when need
// does not fit.
func (r *Reservation) Grow(ctx context.Context, need, want int64) error {
	return r.claimRoom(ctx, need, max(want, need), "", "")
}

// claimRoom sets the claim under the user's lock, measuring once and
// retrying before it refuses.
func (r *Reservation) claimRoom(ctx context.Context, need, want int64, spool, target string) error {
	q := r.q
	for {
		used, err := q.Used(ctx)
		if err != nil {
			return err
		}
		room, err := r.tryClaim(ctx, used, need, want, spool, target)
		if err != nil || room >= need {
			return err
		}
		q.mu.Lock()
		measured := q.measured
		q.mu.Unlock()
		if measured {
			return fmt.Errorf("%w: %d bytes do not fit in the %d bytes left", ErrQuotaExceeded, need-r.credit, max(room-r.credit, 0))
		}
		if _, err := q.remeasure(ctx); err != nil {
			return err
		}
	}
}

// tryClaim is one locked decision: the room for this write (quota minus
// usage minus the other reservations, plus the credit), and the claim
// recorded when need fits. used is the caller's figure for a user without a
// volumes row (tests, and volumes threadbox has not recorded).
func (r *Reservation) tryClaim(ctx context.Context, used, need, want int64, spool, target string) (room int64, err error) {
	q := r.q
	tx, err := q.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("reserving volume space: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	qs := db.New(tx)
	if err := qs.LockVolumeQuota(ctx, q.UserID); err != nil {
		return 0, fmt.Errorf("reserving volume space: %w", err)
	}
	switch row, err := qs.VolumeUsage(ctx, q.UserID); {
	case err == nil:
		used = row.UsedBytes
	case !errors.Is(err, pgx.ErrNoRows):
		return 0, fmt.Errorf("reading volume usage: %w", err)
	}
	others, err := qs.ReservedVolumeBytes(ctx, db.ReservedVolumeBytesParams{UserID: q.UserID, ExceptID: r.id})
	if err != nil {
		return 0, fmt.Errorf("reading reservations: %w", err)
	}
	room = q.Limit - used - others + r.credit
	if room < need {
		return room, nil
	}
	claim := min(want, room)
	if err := qs.UpsertVolumeReservation(ctx, db.UpsertVolumeReservationParams{
		ID: r.id, UserID: q.UserID, Bytes: max(claim-r.credit, 0),
		Spool: optional(spool), Target: optional(target), TtlSeconds: r.ttl.Seconds(),
	}); err != nil {
		return 0, fmt.Errorf("recording reservation: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("recording reservation: %w", err)
	}
	r.claim = claim
	return room, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// track records the commit step the write is about to take (see
// commitState), so a sweep can finish it if this process dies.
func (r *Reservation) track(ctx context.Context, st commitState) error {
	if r == nil {
		return nil
	}
	err := r.q.queries().TrackVolumeReservation(ctx, db.TrackVolumeReservationParams{
		ID: r.id, Spool: optional(st.Spool), Target: optional(st.Target), Aside: optional(st.Aside),
		Phase: string(st.Phase), HadOld: st.HadOld,
	})
	if err != nil {
		return fmt.Errorf("recording the write's progress: %w", err)
	}
	return nil
}

// Count ends the reservation of a write that landed: delta (bytes written
// minus bytes replaced) is added to the usage and the reservation dropped in
// one transaction, so the space is never counted twice or not at all. With
// leftover (the replaced file could not be deleted) the reservation stays
// behind, holding no bytes and expired, for the sweep.
func (r *Reservation) Count(ctx context.Context, delta int64, leftover bool) error {
	if r == nil {
		return nil
	}
	r.stop()
	q := r.q
	tx, err := q.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("recording volume usage: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	qs := db.New(tx)
	if err := qs.LockVolumeQuota(ctx, q.UserID); err != nil {
		return fmt.Errorf("recording volume usage: %w", err)
	}
	if delta != 0 {
		if _, err := qs.AddVolumeUsage(ctx, db.AddVolumeUsageParams{UserID: q.UserID, Delta: delta}); err != nil {
			return fmt.Errorf("recording volume usage: %w", err)
		}
	}
	if leftover {
		err = qs.LeaveVolumeReservation(ctx, r.id)
	} else {
		err = qs.DeleteVolumeReservation(ctx, r.id)
	}
	if err != nil {
		return fmt.Errorf("ending reservation: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("recording volume usage: %w", err)
	}
	return nil
}

// Release ends the reservation of a write that failed and left nothing
// behind.
func (r *Reservation) Release(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.stop()
	return r.q.Release(ctx, r.id)
}

// Leave ends a failed write whose files could not be cleaned up: the
// reservation holds no bytes any more and is handed to the sweep at once.
func (r *Reservation) Leave(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.stop()
	if err := r.q.queries().LeaveVolumeReservation(ctx, r.id); err != nil {
		return fmt.Errorf("leaving reservation %s: %w", r.id, err)
	}
	return nil
}

// keep stops renewing an adopted reservation and keeps it, holding its
// room: an upload whose push failed waits for its client to come back (or
// for the reservation to expire). clean says the failed attempt left no
// files, so the record of them is cleared.
func (r *Reservation) keep(ctx context.Context, clean bool) error {
	r.stop()
	if !clean {
		return nil
	}
	return r.track(ctx, commitState{Phase: phaseSpool})
}

func (r *Reservation) renew(ctx context.Context) error {
	n, err := r.q.queries().RenewVolumeReservation(ctx, db.RenewVolumeReservationParams{ID: r.id, TtlSeconds: r.ttl.Seconds()})
	if err != nil {
		return fmt.Errorf("renewing reservation %s: %w", r.id, err)
	}
	if n == 0 {
		return fmt.Errorf("reservation %s is gone", r.id)
	}
	return nil
}

// keepAlive renews the reservation every ttl/4 until stop (a missed
// renewal is made up by the next; the TTL allows three).
func (r *Reservation) keepAlive() {
	r.stopKeep = every(r.ttl/4, func(ctx context.Context) { _ = r.renew(ctx) })
}

func (r *Reservation) stop() {
	if r.stopKeep != nil {
		r.stopKeep()
		r.stopKeep = nil
	}
}
