package activities_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
)

func TestRecordLifecycleEventIsDeduplicated(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	_, err := f.q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: "u1", ThreadID: "t1"})
	require.NoError(t, err)
	at := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	ev := activities.LifecycleEvent{
		DedupKey: "thread:u1:t1/run/1", Kind: entity.KindThread, UserID: "u1", ThreadID: "t1",
		SandboxID: "sbx-1", Event: "created", Cause: activities.CauseUse, OccurredAt: at,
		State: "running", Generation: 1, Snapshot: "snap", LastActivityAt: at, AutoStopAt: at.Add(15 * time.Minute),
	}
	require.NoError(t, f.acts.RecordLifecycleEvent(ctx, ev))
	require.NoError(t, f.acts.RecordLifecycleEvent(ctx, ev), "a retry is a no-op")

	rows, err := f.q.ListLifecycleEvents(ctx, db.ListLifecycleEventsParams{EntityKind: "thread", UserID: "u1", EntityID: "t1"})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, "use", rows[0].Cause)
	th, err := f.q.APIGetThread(ctx, db.APIGetThreadParams{UserID: "u1", ThreadID: "t1"})
	require.NoError(t, err)
	assert.Equal(t, "running", th.State)
	require.NotNil(t, th.SandboxID)
	assert.Equal(t, "sbx-1", *th.SandboxID)
	require.NotNil(t, th.AutoStopAt)
	assert.True(t, at.Add(15*time.Minute).Equal(*th.AutoStopAt))

	// A user delete ends the thread; a late write of an older run cannot
	// bring it back (only the API revives a deleted thread).
	del := ev
	del.DedupKey, del.Event, del.Cause, del.State, del.SandboxID = "thread:u1:t1/run/2", "deleted", activities.CauseUserDelete, "deleted", ""
	require.NoError(t, f.acts.RecordLifecycleEvent(ctx, del))
	late := ev
	late.DedupKey, late.Event, late.State = "thread:u1:t1/run/3", "stopped", "stopped"
	require.NoError(t, f.acts.RecordLifecycleEvent(ctx, late))
	th, err = f.q.APIGetThread(ctx, db.APIGetThreadParams{UserID: "u1", ThreadID: "t1"})
	require.NoError(t, err)
	assert.Equal(t, "deleted", th.State)

	revived, err := f.q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: "u1", ThreadID: "t1"})
	require.NoError(t, err, "a deleted thread can be created again")
	assert.Equal(t, "creating", revived.State)

	files := activities.LifecycleEvent{DedupKey: "files:u1/run/1", Kind: entity.KindFiles, UserID: "u1",
		SandboxID: "sbx-f", Event: "stopped", Cause: activities.CauseIdleTimer, OccurredAt: at}
	require.NoError(t, f.acts.RecordLifecycleEvent(ctx, files))
	frows, err := f.q.ListLifecycleEvents(ctx, db.ListLifecycleEventsParams{EntityKind: "files", UserID: "u1", EntityID: "u1"})
	require.NoError(t, err)
	require.Len(t, frows, 1)
	assert.Equal(t, "idle_timer", frows[0].Cause)
}
