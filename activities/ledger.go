package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
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
	recorded := false
	err := pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) error {
		q := a.Queries.WithTx(tx)
		n, err := insertLedgerRow(ctx, q, ev)
		if err != nil {
			return err
		}
		recorded = n > 0
		if n == 0 || ev.Kind != entity.KindThread {
			return nil // already recorded by an earlier attempt
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
		a.Metrics.transition(ev) // once per row: a retry of a committed write records nothing
	}
	return err
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
	entityID := ev.ThreadID
	if ev.Kind == entity.KindFiles {
		entityID = ev.UserID
	}
	n, err = q.RecordLifecycleEvent(ctx, db.RecordLifecycleEventParams{
		DedupKey:   ev.DedupKey,
		EntityKind: string(ev.Kind),
		UserID:     ev.UserID,
		EntityID:   entityID,
		SandboxID:  ev.SandboxID,
		Event:      ev.Event,
		Cause:      ev.Cause,
		Detail:     ev.Detail,
		OccurredAt: ev.OccurredAt,
	})
	if err != nil {
		return 0, fmt.Errorf("ledger %s: %w", ev.DedupKey, err)
	}
	return n, nil
}
