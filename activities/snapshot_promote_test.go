package activities_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/activities"
	st "github.com/threadbox/threadbox/skills/skilltest"
)

// buildRow records version v as built and ready for promotion, as the build
// workflow does before promoting.
func buildRow(t *testing.T, e *skillEnv, v int) activities.StartSnapshotBuildResult {
	t.Helper()
	res, err := e.acts.StartSnapshotBuild(context.Background(), activities.StartSnapshotBuildInput{
		Version: v, DaytonaName: fmt.Sprintf("threadbox-skills-v%d", v), Actor: "admin", WorkflowID: fmt.Sprintf("snapshot-build:%d", v),
	})
	require.NoError(t, err)
	return res
}

func activeID(t *testing.T, e *skillEnv) *int64 {
	t.Helper()
	row, err := e.q.GetActiveSnapshot(context.Background())
	if err != nil {
		return nil
	}
	return &row.ID
}

// TestPromoteRespectsRollbackDuringBuild: a build promotes only if the active
// pointer is still the one it started from. A rollback that happens during
// the build wins, and the skipped promotion is in the audit trail.
func TestPromoteRespectsRollbackDuringBuild(t *testing.T) {
	e := newSkillEnv(t, false)
	ctx := context.Background()
	skillA := e.addSkill(t, st.Zip(st.Valid("alpha", "")...), "valid")

	v1 := buildRow(t, e, 1)
	require.Nil(t, v1.BuiltFromID, "v1 is built from the base")
	require.Equal(t, []string{skillA.String()}, v1.SkillIDs)
	p1, err := e.acts.PromoteSnapshot(ctx, activities.PromoteSnapshotInput{SnapshotID: v1.SnapshotID, DaytonaSnapshotID: "d1", ExpectedFromID: v1.BuiltFromID, Actor: "admin", Reason: "alpha validated", WorkflowID: "snapshot-build:1"})
	require.NoError(t, err)
	require.True(t, p1.Activated)
	require.Equal(t, v1.SnapshotID, *activeID(t, e))
	sk, err := e.q.GetSkill(ctx, skillA)
	require.NoError(t, err)
	require.Equal(t, "published", sk.Status)
	require.Equal(t, v1.SnapshotID, *sk.SnapshotID)

	// A retried promotion changes nothing and answers the same.
	again, err := e.acts.PromoteSnapshot(ctx, activities.PromoteSnapshotInput{SnapshotID: v1.SnapshotID, DaytonaSnapshotID: "d1", Actor: "admin", WorkflowID: "snapshot-build:1"})
	require.NoError(t, err)
	require.True(t, again.Activated)

	skillB := e.addSkill(t, st.Zip(st.Valid("beta", "")...), "valid")
	v2 := buildRow(t, e, 2)
	require.Equal(t, v1.SnapshotID, *v2.BuiltFromID)
	require.Len(t, v2.SkillIDs, 2, "v2 includes every skill validated before it")

	// An admin rolls back to the base while v2 builds.
	rb, err := e.acts.ActivateSnapshot(ctx, activities.ActivateSnapshotInput{SnapshotID: 0, Actor: "root", Reason: "rollback: bad release", WorkflowID: "snapshot-rollback:1"})
	require.NoError(t, err)
	require.Equal(t, v1.SnapshotID, *rb.FromID)
	require.Nil(t, rb.ToID)
	require.Nil(t, activeID(t, e))

	p2, err := e.acts.PromoteSnapshot(ctx, activities.PromoteSnapshotInput{SnapshotID: v2.SnapshotID, DaytonaSnapshotID: "d2", ExpectedFromID: v2.BuiltFromID, Actor: "admin", Reason: "beta validated", WorkflowID: "snapshot-build:2"})
	require.NoError(t, err)
	require.False(t, p2.Activated)
	require.Contains(t, p2.Reason, "changed")
	require.Nil(t, activeID(t, e), "the rollback must survive the build's promotion")
	row, err := e.q.GetSnapshot(ctx, v2.SnapshotID)
	require.NoError(t, err)
	require.Equal(t, "ready", row.State)
	require.False(t, row.Active)
	sk, err = e.q.GetSkill(ctx, skillB)
	require.NoError(t, err)
	require.Equal(t, "valid", sk.Status, "a skill is published only when a snapshot holding it is active")

	audit, err := e.q.ListSnapshotActivations(ctx, 10)
	require.NoError(t, err)
	require.Len(t, audit, 3)
	skipped := audit[0]
	require.Equal(t, activities.OutcomeSkipped, skipped.Outcome)
	require.Equal(t, "snapshot-build:2", skipped.WorkflowID)
	require.Nil(t, skipped.FromSnapshotID)
	require.Equal(t, v2.SnapshotID, *skipped.ToSnapshotID)
	require.Equal(t, "root", audit[1].Actor)
	require.True(t, strings.HasPrefix(audit[1].Reason, "rollback"))

	// The admin can still activate v2 explicitly; that publishes beta.
	_, err = e.acts.ActivateSnapshot(ctx, activities.ActivateSnapshotInput{SnapshotID: v2.SnapshotID, Actor: "root", Reason: "after all", WorkflowID: "snapshot-activate:2"})
	require.NoError(t, err)
	require.Equal(t, v2.SnapshotID, *activeID(t, e))
	sk, err = e.q.GetSkill(ctx, skillB)
	require.NoError(t, err)
	require.Equal(t, "published", sk.Status)
	require.Equal(t, v2.SnapshotID, *sk.SnapshotID)
}

func TestActivateRefusesSnapshotsThatAreNotReady(t *testing.T) {
	e := newSkillEnv(t, false)
	ctx := context.Background()
	v1 := buildRow(t, e, 1)
	require.NoError(t, e.acts.FailSnapshotBuild(ctx, activities.FailSnapshotBuildInput{SnapshotID: v1.SnapshotID, Error: "build_failed"}))
	_, err := e.acts.ActivateSnapshot(ctx, activities.ActivateSnapshotInput{SnapshotID: v1.SnapshotID, Actor: "root", WorkflowID: "w1"})
	require.Error(t, err)
	require.Nil(t, activeID(t, e))
	_, err = e.acts.ActivateSnapshot(ctx, activities.ActivateSnapshotInput{SnapshotID: 999, Actor: "root", WorkflowID: "w2"})
	require.Error(t, err)
	n, err := e.q.ListSnapshotActivations(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, n, "refused activations leave no audit row")
	row, err := e.q.GetSnapshot(ctx, v1.SnapshotID)
	require.NoError(t, err)
	require.Equal(t, "failed", row.State)
	require.Equal(t, "build_failed", *row.ErrorMessage)
}

// An activation that finds its target already active (a rollback to the same
// version got there first) moves nothing and is audited as skipped.
func TestActivateOfTheActiveVersionIsAuditedAsSkipped(t *testing.T) {
	e := newSkillEnv(t, false)
	ctx := context.Background()
	for i, wf := range []string{"snapshot-rollback:a", "snapshot-rollback:b"} {
		_, err := e.acts.ActivateSnapshot(ctx, activities.ActivateSnapshotInput{SnapshotID: 0, Actor: "root", Reason: "to base", WorkflowID: wf})
		require.NoError(t, err, "attempt %d", i)
	}
	rows, err := e.q.ListSnapshotActivations(ctx, 10)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	for _, r := range rows {
		require.Equal(t, activities.OutcomeSkipped, r.Outcome, "the base was active all along")
		require.Contains(t, r.Reason, "already active")
	}
	require.Nil(t, activeID(t, e))
}
