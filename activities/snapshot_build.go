package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
)

// NextSnapshotVersion reads the number the next snapshot version gets. Builds
// run one at a time (the builder workflow), so nothing can take the number
// between this read and StartSnapshotBuild's insert.
func (a *Activities) NextSnapshotVersion(ctx context.Context) (int, error) {
	v, err := a.Queries.NextSnapshotVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the next snapshot version: %w", err)
	}
	return int(v), nil
}

// StartSnapshotBuild records version in.Version as building, with the skill
// set it will bake in (the newest valid-or-published version of every skill)
// and the version active right now (what the promotion compares against). A
// retry finds its own row; a row of another build under that version is a
// non-retryable conflict.
func (a *Activities) StartSnapshotBuild(ctx context.Context, in StartSnapshotBuildInput) (StartSnapshotBuildResult, error) {
	tx, err := a.Pool.Begin(ctx)
	if err != nil {
		return StartSnapshotBuildResult{}, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	q := a.Queries.WithTx(tx)
	if err := q.LockSnapshotPointer(ctx); err != nil {
		return StartSnapshotBuildResult{}, fmt.Errorf("lock snapshot pointer: %w", err)
	}
	row, err := q.GetSnapshotByVersion(ctx, int32(in.Version))
	switch {
	case err == nil:
		if row.DaytonaName != in.DaytonaName {
			return StartSnapshotBuildResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("snapshot version %d already belongs to %s", in.Version, row.DaytonaName), "VersionTaken", nil)
		}
	case errors.Is(err, pgx.ErrNoRows):
		var from *int64
		active, err := q.GetActiveSnapshot(ctx)
		switch {
		case err == nil:
			from = &active.ID
		case !errors.Is(err, pgx.ErrNoRows):
			return StartSnapshotBuildResult{}, fmt.Errorf("reading the active snapshot: %w", err)
		}
		set, err := q.BuildSkillSet(ctx)
		if err != nil {
			return StartSnapshotBuildResult{}, fmt.Errorf("reading the skill set: %w", err)
		}
		ids := make([]uuid.UUID, 0, len(set))
		for _, s := range set {
			ids = append(ids, s.ID)
		}
		row, err = q.InsertSnapshot(ctx, db.InsertSnapshotParams{
			Version: int32(in.Version), DaytonaName: in.DaytonaName, SkillIds: ids,
			CreatedBy: in.Actor, WorkflowID: in.WorkflowID, BuiltFromID: from,
		})
		if err != nil {
			return StartSnapshotBuildResult{}, fmt.Errorf("recording snapshot version %d: %w", in.Version, err)
		}
	default:
		return StartSnapshotBuildResult{}, fmt.Errorf("reading snapshot version %d: %w", in.Version, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return StartSnapshotBuildResult{}, fmt.Errorf("commit: %w", err)
	}
	res := StartSnapshotBuildResult{SnapshotID: row.ID, Version: int(row.Version), DaytonaName: row.DaytonaName, BuiltFromID: row.BuiltFromID}
	for _, id := range row.SkillIds {
		res.SkillIDs = append(res.SkillIDs, id.String())
		r, err := a.Queries.GetSkill(ctx, id)
		if err != nil {
			return StartSnapshotBuildResult{}, fmt.Errorf("reading skill %s: %w", id, err)
		}
		res.SkillNames = append(res.SkillNames, fmt.Sprintf("%s@v%d", r.Name, r.Version))
	}
	return res, nil
}

// BuildSnapshotImage makes the Daytona snapshot of a version: a scratch
// sandbox from the base snapshot, every skill of the set uploaded into
// /home/daytona/skills/<name>/, then the sandbox captured as in.DaytonaName
// and waited for until Daytona reports it active. Every step is find-or-
// create by deterministic name, so an attempt retried after a worker crash
// resumes the same build instead of starting another. It heartbeats
// throughout.
func (a *Activities) BuildSnapshotImage(ctx context.Context, in BuildSnapshotImageInput) (BuildSnapshotImageResult, error) {
	stop := keepAlive(ctx, "building "+in.DaytonaName)
	defer stop()
	// A retried attempt whose snapshot already exists has nothing left to do
	// but wait for it.
	if snap, err := a.Daytona.GetSnapshot(ctx, in.DaytonaName); err == nil {
		return a.waitSnapshot(ctx, in.DaytonaName, snap.ID)
	} else if !errors.Is(err, daytona.ErrNotFound) {
		return BuildSnapshotImageResult{}, temporalError("get snapshot", err)
	}
	var actor string
	if row, err := a.Queries.GetSnapshot(ctx, in.SnapshotID); err == nil {
		actor = row.CreatedBy
	}
	sb, err := a.ensureScratch(ctx, in.ScratchKey, a.Config.BaseSnapshot, actor)
	if err != nil {
		return BuildSnapshotImageResult{}, err
	}
	tb := a.Daytona.Toolbox(sb.ID, sb.ToolboxURL)
	for _, id := range in.SkillIDs {
		b, err := a.loadSkill(ctx, id)
		if err != nil {
			return BuildSnapshotImageResult{}, nonRetryableIfSkillError(err)
		}
		if err := uploadSkill(ctx, tb, b); err != nil {
			return BuildSnapshotImageResult{}, err
		}
	}
	snap, err := a.Daytona.SnapshotSandbox(ctx, sb.ID, in.DaytonaName)
	if err != nil {
		return BuildSnapshotImageResult{}, temporalError("snapshot sandbox", err)
	}
	res, err := a.waitSnapshot(ctx, in.DaytonaName, snap.ID)
	res.SandboxID = sb.ID
	return res, err
}

// waitSnapshot waits (heartbeating each observation) until Daytona reports
// the snapshot active.
func (a *Activities) waitSnapshot(ctx context.Context, name, id string) (BuildSnapshotImageResult, error) {
	snap, err := a.Daytona.WaitSnapshotActive(ctx, name, func(s daytona.Snapshot) {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, "snapshot "+s.Name+" is "+s.State)
		}
	})
	if err != nil {
		return BuildSnapshotImageResult{}, temporalError("wait for snapshot", err)
	}
	if snap.ID != "" {
		id = snap.ID
	}
	return BuildSnapshotImageResult{DaytonaSnapshotID: id}, nil
}

func nonRetryableIfSkillError(err error) error {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return err
	}
	return temporal.NewNonRetryableApplicationError("stored skill is unusable: "+err.Error(), "BadSkill", err)
}

// FailSnapshotBuild marks a version failed with the reason; the active
// pointer is not touched.
func (a *Activities) FailSnapshotBuild(ctx context.Context, in FailSnapshotBuildInput) error {
	msg := in.Error
	if err := a.Queries.MarkSnapshotFailed(ctx, db.MarkSnapshotFailedParams{ID: in.SnapshotID, ErrorMessage: &msg}); err != nil {
		return fmt.Errorf("marking snapshot %d failed: %w", in.SnapshotID, err)
	}
	return nil
}

// PromoteSnapshot marks a built version ready and, if the active pointer is
// still the one the build started from, makes it active and publishes its
// skills. If an admin moved the pointer during the build (a rollback or an
// activation), the version stays ready but inactive and the audit trail gets
// a 'skipped' row saying why, so the admin's decision is never silently
// overwritten. Idempotent per workflow id.
func (a *Activities) PromoteSnapshot(ctx context.Context, in PromoteSnapshotInput) (PromoteSnapshotResult, error) {
	tx, err := a.Pool.Begin(ctx)
	if err != nil {
		return PromoteSnapshotResult{}, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	q := a.Queries.WithTx(tx)
	if err := q.LockSnapshotPointer(ctx); err != nil {
		return PromoteSnapshotResult{}, fmt.Errorf("lock snapshot pointer: %w", err)
	}
	if prev, err := q.GetActivationByWorkflow(ctx, in.WorkflowID); err == nil {
		return PromoteSnapshotResult{Activated: prev.Outcome == OutcomeActivated, FromID: prev.FromSnapshotID, Reason: prev.Reason}, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return PromoteSnapshotResult{}, fmt.Errorf("reading audit: %w", err)
	}
	dsid := in.DaytonaSnapshotID
	if err := q.MarkSnapshotReady(ctx, db.MarkSnapshotReadyParams{ID: in.SnapshotID, DaytonaSnapshotID: &dsid}); err != nil {
		return PromoteSnapshotResult{}, fmt.Errorf("marking snapshot ready: %w", err)
	}
	cur, err := activeID(ctx, q)
	if err != nil {
		return PromoteSnapshotResult{}, err
	}
	res := PromoteSnapshotResult{FromID: cur, Activated: sameID(cur, in.ExpectedFromID)}
	outcome := OutcomeActivated
	if res.Activated {
		res.Reason = in.Reason
		if err := setActive(ctx, q, in.SnapshotID); err != nil {
			return PromoteSnapshotResult{}, err
		}
	} else {
		outcome = OutcomeSkipped
		res.Reason = fmt.Sprintf("not activated: the active snapshot changed from %s to %s while this version was building; activate it explicitly if it is wanted",
			describeID(in.ExpectedFromID), describeID(cur))
	}
	to := in.SnapshotID
	if _, err := q.InsertSnapshotActivation(ctx, db.InsertSnapshotActivationParams{
		FromSnapshotID: cur, ToSnapshotID: &to, Actor: in.Actor, Reason: res.Reason, WorkflowID: in.WorkflowID, Outcome: outcome,
	}); err != nil {
		return PromoteSnapshotResult{}, fmt.Errorf("writing audit row: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return PromoteSnapshotResult{}, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}
