package activities_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
)

// fixture is a real PostgreSQL database, an in-process emulator and the
// activities over them.
type fixture struct {
	acts *activities.Activities
	gw   *daytona.Gateway
	q    *db.Queries
	emu  *emulator.Server
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, 10*time.Millisecond) }

// newFixtureWith takes the emulator's transition delay: how long each
// create, start, stop and delete takes.
func newFixtureWith(t *testing.T, transition time.Duration) *fixture {
	t.Helper()
	pool, _ := testenv.Database(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	emu, err := emulator.New(ctx, emulator.Options{
		APIKey: "k", TransitionDelay: transition, CronInterval: 50 * time.Millisecond, Logger: log,
	})
	require.NoError(t, err)
	hs := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { hs.Close(); _ = emu.Close(); cancel() })
	gw, err := daytona.New(daytona.Config{APIURL: hs.URL + "/api", APIKey: "k", PollInterval: 10 * time.Millisecond, WaitTimeout: 20 * time.Second, Logger: log})
	require.NoError(t, err)
	cfg, err := config.Load("", func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return &fixture{acts: activities.New(cfg, pool, gw, log), gw: gw, q: db.New(pool), emu: emu}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func threadInput(user, thread string, gen int) activities.EnsureSandboxInput {
	return activities.EnsureSandboxInput{Kind: entity.KindThread, UserID: user, ThreadID: thread, Generation: gen,
		AutoStop: 15 * time.Minute, AutoDelete: 2 * time.Hour}
}

func TestEnsureSandboxIsIdempotent(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	in := threadInput("alice", "t/1", 1)

	first, err := f.acts.EnsureSandbox(ctx, in)
	require.NoError(t, err)
	again, err := f.acts.EnsureSandbox(ctx, in) // a retried activity
	require.NoError(t, err)
	assert.Equal(t, first.SandboxID, again.SandboxID)
	assert.Equal(t, 1, first.Generation)
	assert.NotEmpty(t, first.ToolboxURL)

	all, err := f.gw.ListSandboxes(ctx, map[string]string{daytona.LabelManagedBy: daytona.LabelManagedByValue})
	require.NoError(t, err)
	require.Len(t, all, 1, "exactly one sandbox for the thread")
	sb, err := f.gw.GetSandbox(ctx, first.SandboxID)
	require.NoError(t, err)
	assert.Equal(t, daytona.StateStarted, sb.State)
	assert.Equal(t, map[string]string{"managed-by": "threadbox", "kind": "agent", "user": "alice", "thread": "t/1"}, sb.Labels)
	assert.Equal(t, 16, sb.AutoStopMinutes, "Daytona's backstop is a minute longer than ours")
	assert.Equal(t, 121, sb.AutoDeleteMinutes)

	row, err := f.q.GetSandboxRow(ctx, first.SandboxID)
	require.NoError(t, err)
	assert.Equal(t, "running", row.State)
	assert.Equal(t, "agent", row.SandboxType)
	vol, err := f.q.GetVolume(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, "tb-vol-alice", vol.VolumeName)
	require.NotNil(t, vol.DaytonaVolumeID)

	// The volume is mounted: a file written by one sandbox of the user is
	// seen by the user's files sandbox.
	tb := f.gw.Toolbox(first.SandboxID, first.ToolboxURL)
	res, err := tb.Exec(ctx, daytona.ExecRequest{Command: "echo hello > " + entity.VolumeMountPath + "/probe.txt"})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, res.Output)
	files, err := f.acts.EnsureSandbox(ctx, activities.EnsureSandboxInput{Kind: entity.KindFiles, UserID: "alice", Generation: 1, AutoStop: time.Hour})
	require.NoError(t, err)
	assert.NotEqual(t, first.SandboxID, files.SandboxID, "the files sandbox is separate from agent sandboxes")
	fsb, err := f.gw.GetSandbox(ctx, files.SandboxID)
	require.NoError(t, err)
	assert.Equal(t, -1, fsb.AutoDeleteMinutes, "files sandboxes have no auto-delete backstop")
	out, err := f.gw.Toolbox(files.SandboxID, files.ToolboxURL).Exec(ctx, daytona.ExecRequest{Command: "cat " + entity.VolumeMountPath + "/probe.txt"})
	require.NoError(t, err)
	assert.Equal(t, "hello", trim(out.Output))
}

func TestStopStartDeleteAreIdempotent(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	info, err := f.acts.EnsureSandbox(ctx, threadInput("bob", "t1", 1))
	require.NoError(t, err)
	ref := activities.SandboxRef{Kind: entity.KindThread, UserID: "bob", ThreadID: "t1", SandboxID: info.SandboxID, Generation: 1}

	for i := 0; i < 2; i++ {
		res, err := f.acts.StopSandbox(ctx, ref)
		require.NoError(t, err, "stop #%d", i+1)
		assert.False(t, res.Gone)
	}
	sb, err := f.gw.GetSandbox(ctx, info.SandboxID)
	require.NoError(t, err)
	assert.Equal(t, daytona.StateStopped, sb.State)

	started, err := f.acts.StartSandbox(ctx, ref)
	require.NoError(t, err)
	assert.Equal(t, info.SandboxID, started.SandboxID)

	require.NoError(t, f.acts.DeleteSandbox(ctx, ref))
	require.NoError(t, f.acts.DeleteSandbox(ctx, ref), "deleting a deleted sandbox is success")
	row, err := f.q.GetSandboxRow(ctx, info.SandboxID)
	require.NoError(t, err)
	assert.Equal(t, "deleted", row.State)
	assert.NotNil(t, row.DeletedAt)

	_, err = f.acts.StartSandbox(ctx, ref)
	assert.True(t, activities.IsSandboxGone(err), "start of a deleted sandbox says gone: %v", err)
	res, err := f.acts.StopSandbox(ctx, ref)
	require.NoError(t, err)
	assert.True(t, res.Gone)

	// The name of a destroyed generation is never reused, even when a new
	// workflow run asks for generation 1 again.
	next, err := f.acts.EnsureSandbox(ctx, threadInput("bob", "t1", 1))
	require.NoError(t, err)
	assert.Equal(t, 2, next.Generation)
	assert.NotEqual(t, info.SandboxID, next.SandboxID)
}

func TestDeleteByNameWithoutID(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	info, err := f.acts.EnsureSandbox(ctx, threadInput("carol", "t1", 1))
	require.NoError(t, err)
	// The workflow never saw the create's result: it deletes by generation.
	require.NoError(t, f.acts.DeleteSandbox(ctx, activities.SandboxRef{Kind: entity.KindThread, UserID: "carol", ThreadID: "t1", Generation: 1}))
	_, err = f.gw.GetSandbox(ctx, info.SandboxID)
	assert.ErrorIs(t, err, daytona.ErrNotFound)
}

func TestRefreshOfAMissingSandboxSaysGone(t *testing.T) {
	f := newFixture(t)
	err := f.acts.RefreshSandbox(testCtx(t), activities.SandboxRef{SandboxID: "does-not-exist"})
	assert.True(t, activities.IsSandboxGone(err), "%v", err)
}

func trim(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// TestARevivedThreadNeverAdoptsItsEarlierLifesSandbox (issue 12, finding 6):
// a thread deleted while its sandbox could not be destroyed, then created
// again, starts a new workflow run at generation 1. That run must create a
// sandbox of its own, never find-and-adopt the sandbox of the thread's
// earlier life (the reconciler may be deleting it, and it carries the old
// life's state); a retry within the new life still finds its own sandbox.
func TestARevivedThreadNeverAdoptsItsEarlierLifesSandbox(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	_, err := f.q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: "erin", ThreadID: "t1"})
	require.NoError(t, err)
	old, err := f.acts.EnsureSandbox(ctx, threadInput("erin", "t1", 1))
	require.NoError(t, err)
	// The user deletes the thread; destroying its sandbox fails (Daytona
	// down), so its row stays live.
	require.NoError(t, f.acts.RecordLifecycleEvent(ctx, activities.LifecycleEvent{
		DedupKey: "life-1/end", Kind: entity.KindThread, UserID: "erin", ThreadID: "t1", Event: "deleted",
		Cause: activities.CauseUserDelete, OccurredAt: time.Now(), State: "deleted", Generation: 1,
	}))
	_, err = f.q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: "erin", ThreadID: "t1"}) // revived
	require.NoError(t, err)

	next, err := f.acts.EnsureSandbox(ctx, threadInput("erin", "t1", 1))
	require.NoError(t, err)
	assert.NotEqual(t, old.SandboxID, next.SandboxID, "the new life must not adopt the old life's sandbox")
	assert.Equal(t, 2, next.Generation)
	again, err := f.acts.EnsureSandbox(ctx, threadInput("erin", "t1", 1)) // a retried activity of the new life
	require.NoError(t, err)
	assert.Equal(t, next.SandboxID, again.SandboxID)
}

// TestStopOfABrokenSandbox (issue 12, finding 4): Daytona refuses to stop a
// sandbox in state error, and the workflow used to retry that stop forever.
// A recoverable error is recovered (into stopped, files kept); one Daytona
// cannot recover is deleted and reported gone, so the workflow ends the
// generation and the next use creates a healthy one.
func TestStopOfABrokenSandbox(t *testing.T) {
	for _, recoverable := range []bool{true, false} {
		t.Run(fmt.Sprintf("recoverable=%v", recoverable), func(t *testing.T) {
			f := newFixture(t)
			ctx := testCtx(t)
			info, ref := f.brokenSandbox(ctx, t, recoverable)

			res, err := f.acts.StopSandbox(ctx, ref)
			require.NoError(t, err)
			assert.Equal(t, !recoverable, res.Gone)
			row, err := f.q.GetSandboxRow(ctx, info.SandboxID)
			require.NoError(t, err)
			sb, gerr := f.gw.GetSandbox(ctx, info.SandboxID)
			if recoverable {
				require.NoError(t, gerr)
				assert.Equal(t, daytona.StateStopped, sb.State)
				assert.Equal(t, "stopped", row.State)
			} else {
				assert.ErrorIs(t, gerr, daytona.ErrNotFound, "the broken sandbox is deleted")
				assert.Equal(t, "deleted", row.State)
			}
		})
	}
}

// TestStartOfABrokenSandbox (issue 12, finding 4): starting a sandbox in an
// error Daytona can recover brings it back with its files; one it cannot
// recover is deleted and reported gone (the workflow creates the next
// generation).
func TestStartOfABrokenSandbox(t *testing.T) {
	for _, recoverable := range []bool{true, false} {
		t.Run(fmt.Sprintf("recoverable=%v", recoverable), func(t *testing.T) {
			f := newFixture(t)
			ctx := testCtx(t)
			info, ref := f.brokenSandbox(ctx, t, recoverable)

			started, err := f.acts.StartSandbox(ctx, ref)
			if recoverable {
				require.NoError(t, err)
				assert.Equal(t, info.SandboxID, started.SandboxID)
				return
			}
			assert.True(t, activities.IsSandboxGone(err), "%v", err)
			_, gerr := f.gw.GetSandbox(ctx, info.SandboxID)
			assert.ErrorIs(t, gerr, daytona.ErrNotFound, "the broken sandbox is deleted")
		})
	}
}

// brokenSandbox creates a thread's sandbox and puts it into Daytona's error
// state, recoverable or not.
func (f *fixture) brokenSandbox(ctx context.Context, t *testing.T, recoverable bool) (activities.SandboxInfo, activities.SandboxRef) {
	t.Helper()
	info, err := f.acts.EnsureSandbox(ctx, threadInput("ivy", "t1", 1))
	require.NoError(t, err)
	require.NoError(t, f.emu.BreakSandbox(info.SandboxID, recoverable))
	return info, activities.SandboxRef{Kind: entity.KindThread, UserID: "ivy", ThreadID: "t1", SandboxID: info.SandboxID, Generation: 1}
}

// A files sandbox is archived on threadbox's schedule (a stopped one is
// billed for disk and counts toward the organisation's disk limit), and an
// agent sandbox, deleted two hours after it stops, keeps Daytona's default.
func TestFilesSandboxArchiveIntervalIsChosen(t *testing.T) {
	f := newFixture(t)
	ctx := testCtx(t)
	f.acts.Config.FilesAutoArchive = config.Interval(36 * time.Hour)
	files, err := f.acts.EnsureSandbox(ctx, activities.EnsureSandboxInput{Kind: entity.KindFiles, UserID: "archie", Generation: 1, AutoStop: time.Hour})
	require.NoError(t, err)
	sb, err := f.gw.GetSandbox(ctx, files.SandboxID)
	require.NoError(t, err)
	require.Equal(t, 36*60, sb.AutoArchiveMinutes, "DAYTONA_FILES_SANDBOX_AUTO_ARCHIVE")
	agent, err := f.acts.EnsureSandbox(ctx, threadInput("archie", "t", 1))
	require.NoError(t, err)
	sb, err = f.gw.GetSandbox(ctx, agent.SandboxID)
	require.NoError(t, err)
	require.Equal(t, 7*24*60, sb.AutoArchiveMinutes, "Daytona's default")
}
