package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/usage"
)

// Lifecycle causes written to the ledger.
const (
	CauseUse         = "use"
	CauseIdleTimer   = "idle_timer"
	CauseDeleteTimer = "delete_timer"
	CauseUserDelete  = "user_delete"
	CauseError       = "error"
	CauseReconcile   = "reconcile"
)

// LifecycleEvent is one transition of a sandbox entity. Besides the ledger row
// it carries the thread's resulting state, so the threads row the API serves
// is updated in the same transaction as the ledger.
type LifecycleEvent struct {
	// DedupKey makes a retried write a no-op (workflow id, run id, sequence).
	DedupKey   string      `json:"DedupKey"`
	Kind       entity.Kind `json:"Kind"`
	UserID     string      `json:"UserID"`
	ThreadID   string      `json:"ThreadID"`
	SandboxID  string      `json:"SandboxID"`
	Event      string      `json:"Event"` // created, started, stopped, deleted, failed, …
	Cause      string      `json:"Cause"` // one of the Cause* constants
	Detail     string      `json:"Detail"`
	OccurredAt time.Time   `json:"OccurredAt"`
	// StopDeadline is the policy deadline an idle stop carried out (set on
	// "stopped" rows only): the ledger's measure of late stops.
	StopDeadline time.Time `json:"StopDeadline"`

	// Thread row after the transition (threads only).
	State          string    `json:"State"` // creating, running, stopped, deleted, error
	Generation     int       `json:"Generation"`
	Snapshot       string    `json:"Snapshot"`
	LastActivityAt time.Time `json:"LastActivityAt"`
	AutoStopAt     time.Time `json:"AutoStopAt"`
	AutoDeleteAt   time.Time `json:"AutoDeleteAt"`
	ErrorMessage   string    `json:"ErrorMessage"`
}

// RecordLifecycleEvent writes a transition to the lifecycle ledger and, for
// threads, the thread's new state, in one transaction. It is idempotent: a
// retry with the same DedupKey changes nothing.
func (a *Activities) RecordLifecycleEvent(ctx context.Context, ev LifecycleEvent) error {
	// PostgreSQL keeps microseconds: measure with the times as stored, so
	// the counters and the usage report (read from the rows) agree.
	ev.OccurredAt = ev.OccurredAt.Truncate(time.Microsecond)
	ev.StopDeadline = ev.StopDeadline.Truncate(time.Microsecond)
	recorded := false
	var ran time.Duration // the running interval this row ends, if any
	err := pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) error {
		q := a.Queries.WithTx(tx)
		n, err := insertLedgerRow(ctx, q, ev)
		if err != nil {
			return err
		}
		recorded = n > 0
		if n == 0 {
			return nil // already recorded by an earlier attempt
		}
		if ran, err = runningUntil(ctx, q, ev); err != nil {
			return err
		}
		if ev.Kind != entity.KindThread {
			return nil
		}
		if _, err := q.UpdateThreadLifecycle(ctx, db.UpdateThreadLifecycleParams{
			UserID:         ev.UserID,
			ThreadID:       ev.ThreadID,
			State:          ev.State,
			SandboxID:      optional(ev.SandboxID),
			Generation:     int32(ev.Generation),
			Snapshot:       optional(ev.Snapshot),
			LastActivityAt: optionalTime(ev.LastActivityAt),
			AutoStopAt:     optionalTime(ev.AutoStopAt),
			AutoDeleteAt:   optionalTime(ev.AutoDeleteAt),
			ErrorMessage:   optional(ev.ErrorMessage),
		}); err != nil {
			return fmt.Errorf("thread %s/%s state: %w", ev.UserID, ev.ThreadID, err)
		}
		return nil
	})
	if err == nil && recorded {
		// Once per row: a retry of a committed write records nothing.
		a.Metrics.transition(ev)
		a.Metrics.ran(ev, ran)
	}
	return err
}

// runningUntil is how long the sandbox ran until ev, when ev ends a running
// interval (or starts another while one was open), by the rule of package
// usage, so the counter and the usage report agree.
func runningUntil(ctx context.Context, q *db.Queries, ev LifecycleEvent) (time.Duration, error) {
	if !usage.Starts(ev.Event) && !usage.Ends(ev.Event) {
		return 0, nil
	}
	prev, err := q.PreviousRunBoundary(ctx, db.PreviousRunBoundaryParams{EntityKind: string(ev.Kind), UserID: ev.UserID,
		EntityID: ledgerEntityID(ev), At: ev.OccurredAt, DedupKey: ev.DedupKey, Boundaries: usage.Boundaries()})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !usage.Starts(prev.Event)) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ledger: previous boundary of %s: %w", ev.DedupKey, err)
	}
	return max(ev.OccurredAt.Sub(prev.OccurredAt), 0), nil
}

// ledgerEntityID is the ledger's entity id: the thread, or for a files
// session its user.
func ledgerEntityID(ev LifecycleEvent) string {
	if ev.Kind == entity.KindFiles {
		return ev.UserID
	}
	return ev.ThreadID
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// insertLedgerRow writes the ledger row of ev alone; n is 0 when an earlier
// attempt already wrote it. The orphan reconciler uses it directly: an orphan
// is not a transition of its thread, whose row (live or not) it must leave
// alone.
func insertLedgerRow(ctx context.Context, q *db.Queries, ev LifecycleEvent) (n int64, err error) {
	n, err = q.RecordLifecycleEvent(ctx, db.RecordLifecycleEventParams{
		DedupKey:     ev.DedupKey,
		EntityKind:   string(ev.Kind),
		UserID:       ev.UserID,
		EntityID:     ledgerEntityID(ev),
		SandboxID:    ev.SandboxID,
		Event:        ev.Event,
		Cause:        ev.Cause,
		Detail:       ev.Detail,
		OccurredAt:   ev.OccurredAt,
		StopDeadline: optionalTime(ev.StopDeadline),
	})
	if err != nil {
		return 0, fmt.Errorf("ledger %s: %w", ev.DedupKey, err)
	}
	return n, nil
}
