package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/temporal"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
)

// Outcomes of an audit row in snapshot_activations.
const (
	OutcomeActivated = "activated"
	OutcomeSkipped   = "skipped"
)

// EnsureSnapshotUsable makes sure the Daytona snapshot of a version (0 = the
// base snapshot) can make sandboxes before the pointer moves to it: Daytona
// deactivates snapshots unused for two weeks, and an old version is exactly
// what a rollback goes back to. An inactive snapshot is re-activated and
// waited for (heartbeating).
func (a *Activities) EnsureSnapshotUsable(ctx context.Context, in EnsureSnapshotUsableInput) error {
	name := a.Config.BaseSnapshot
	if in.SnapshotID != 0 {
		row, err := a.Queries.GetSnapshot(ctx, in.SnapshotID)
		if errors.Is(err, pgx.ErrNoRows) {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("snapshot %d does not exist", in.SnapshotID), "SnapshotNotFound", err)
		}
		if err != nil {
			return fmt.Errorf("reading snapshot %d: %w", in.SnapshotID, err)
		}
		if row.State != "ready" {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("snapshot %d is %s, not ready", in.SnapshotID, row.State), "SnapshotNotReady", nil)
		}
		name = row.DaytonaName
	}
	if name == "" {
		return nil // Daytona's default snapshot: nothing of ours to activate
	}
	snap, err := a.Daytona.GetSnapshot(ctx, name)
	if err != nil {
		return temporalError("get snapshot "+name, err)
	}
	if snap.State == daytona.SnapshotActive {
		return nil
	}
	stop := keepAlive(ctx, "activating "+name)
	defer stop()
	if snap.State == daytona.SnapshotInactive {
		if _, err := a.Daytona.ActivateSnapshot(ctx, snap.ID); err != nil {
			return temporalError("activate snapshot "+name, err)
		}
	}
	if _, err := a.Daytona.WaitSnapshotActive(ctx, snap.ID, nil); err != nil {
		return temporalError("wait for snapshot "+name, err)
	}
	return nil
}

// ActivateSnapshot moves the active pointer to a version (0 = the base
// snapshot) for an admin activation or rollback, publishes the valid skills
// baked into it, and writes the audit row (who, from, to, why). Idempotent
// per workflow id.
func (a *Activities) ActivateSnapshot(ctx context.Context, in ActivateSnapshotInput) (ActivateSnapshotResult, error) {
	tx, err := a.Pool.Begin(ctx)
	if err != nil {
		return ActivateSnapshotResult{}, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	q := a.Queries.WithTx(tx)
	if err := q.LockSnapshotPointer(ctx); err != nil {
		return ActivateSnapshotResult{}, fmt.Errorf("lock snapshot pointer: %w", err)
	}
	if prev, err := q.GetActivationByWorkflow(ctx, in.WorkflowID); err == nil {
		return ActivateSnapshotResult{FromID: prev.FromSnapshotID, ToID: prev.ToSnapshotID, At: prev.CreatedAt}, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return ActivateSnapshotResult{}, fmt.Errorf("reading audit: %w", err)
	}
	cur, err := activeID(ctx, q)
	if err != nil {
		return ActivateSnapshotResult{}, err
	}
	var to *int64
	if in.SnapshotID != 0 {
		row, err := q.GetSnapshot(ctx, in.SnapshotID)
		if errors.Is(err, pgx.ErrNoRows) {
			return ActivateSnapshotResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("snapshot %d does not exist", in.SnapshotID), "SnapshotNotFound", err)
		}
		if err != nil {
			return ActivateSnapshotResult{}, fmt.Errorf("reading snapshot: %w", err)
		}
		if row.State != "ready" {
			return ActivateSnapshotResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("snapshot %d is %s, not ready", in.SnapshotID, row.State), "SnapshotNotReady", nil)
		}
		id := row.ID
		to = &id
	}
	outcome, reason := OutcomeActivated, in.Reason
	switch {
	case sameSnapshot(cur, to):
		// Another activation or rollback got there first (the API's
		// already-active check ran before this workflow): nothing moves, and
		// the audit trail says so.
		outcome, reason = OutcomeSkipped, in.Reason+" (already active)"
	case to == nil:
		if err := q.ClearActiveSnapshot(ctx); err != nil {
			return ActivateSnapshotResult{}, fmt.Errorf("clearing active snapshot: %w", err)
		}
	default:
		if err := setActive(ctx, q, *to); err != nil {
			return ActivateSnapshotResult{}, err
		}
	}
	row, err := q.InsertSnapshotActivation(ctx, db.InsertSnapshotActivationParams{
		FromSnapshotID: cur, ToSnapshotID: to, Actor: in.Actor, Reason: reason, WorkflowID: in.WorkflowID, Outcome: outcome,
	})
	if err != nil {
		return ActivateSnapshotResult{}, fmt.Errorf("writing audit row: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return ActivateSnapshotResult{}, fmt.Errorf("commit: %w", err)
	}
	return ActivateSnapshotResult{FromID: cur, ToID: to, At: row.CreatedAt}, nil
}

// sameSnapshot reports whether two version ids (nil = the base) are the same.
func sameSnapshot(a, b *int64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// activeID is the active version's id, nil when the base snapshot is active.
func activeID(ctx context.Context, q *db.Queries) (*int64, error) {
	row, err := q.GetActiveSnapshot(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the active snapshot: %w", err)
	}
	return &row.ID, nil
}

// setActive flips the pointer to id and publishes the valid skills it holds.
func setActive(ctx context.Context, q *db.Queries, id int64) error {
	if err := q.ClearActiveSnapshot(ctx); err != nil {
		return fmt.Errorf("clearing active snapshot: %w", err)
	}
	if err := q.SetSnapshotActive(ctx, id); err != nil {
		return fmt.Errorf("activating snapshot %d: %w", id, err)
	}
	row, err := q.GetSnapshot(ctx, id)
	if err != nil {
		return fmt.Errorf("reading snapshot %d: %w", id, err)
	}
	if !row.Active {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("snapshot %d is %s and cannot be activated", id, row.State), "SnapshotNotReady", nil)
	}
	if _, err := q.PublishSkills(ctx, db.PublishSkillsParams{SnapshotID: &id, Ids: row.SkillIds}); err != nil {
		return fmt.Errorf("publishing skills of snapshot %d: %w", id, err)
	}
	return nil
}

func sameID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func describeID(id *int64) string {
	if id == nil {
		return "the base snapshot"
	}
	return "snapshot " + strconv.FormatInt(*id, 10)
}
