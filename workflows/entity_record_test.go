package workflows_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/workflows"
)

// TestRecordEntityHistories drives real thread and files workflows on a
// Temporal dev server, with the real activities against the emulator and a
// throwaway database, and writes their histories to testdata/ for the replay
// test. Run it after a change that is meant to alter the workflows' commands:
//
//	THREADBOX_RECORD_HISTORIES=1 go test ./workflows -run TestRecordEntityHistories
func TestRecordEntityHistories(t *testing.T) {
	if os.Getenv("THREADBOX_RECORD_HISTORIES") != "1" {
		t.Skip("set THREADBOX_RECORD_HISTORIES=1 to re-record testdata/ histories")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := newRecorder(t)
	cfg := entity.Config{AutoStop: 2 * time.Second, AutoDelete: 3 * time.Second}

	// Thread: create, touch, a command under a lease, idle stop, restart,
	// auto-delete, recreate (generation 2), user delete.
	user, thread := "rec-user", "rec-thread"
	_, err := r.q.CreateThread(ctx, db.CreateThreadParams{UserID: user, ThreadID: thread})
	require.NoError(t, err)
	tin := entity.Input{Kind: entity.KindThread, UserID: user, ThreadID: thread, Config: cfg}
	tid := entity.Thread(user, thread).WorkflowID()
	first := r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	require.True(t, first.Created)
	require.NoError(t, r.c.SignalWorkflow(ctx, tid, "", entity.SignalTouch, entity.TouchSignal{At: time.Now()}))
	r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, &entity.LeaseRequest{ID: "cmd", TTL: 3 * time.Second})
	time.Sleep(time.Second)
	require.NoError(t, r.c.SignalWorkflow(ctx, tid, "", entity.SignalReleaseLease, entity.ReleaseLeaseSignal{LeaseID: "cmd"}))
	r.waitPhase(ctx, tid, entity.PhaseStopped)
	again := r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	require.Equal(t, first.SandboxID, again.SandboxID)
	r.waitPhase(ctx, tid, entity.PhaseDeleted)
	next := r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	require.Equal(t, 2, next.Generation)
	r.delete(ctx, tid)
	r.save(ctx, tid, "thread_lifecycle.json")

	// Files session: create, idle stop, restart, user delete.
	fin := entity.Input{Kind: entity.KindFiles, UserID: user, Config: entity.Config{AutoStop: 2 * time.Second}}
	fid := entity.Files(user).WorkflowID()
	f1 := r.ensure(ctx, fid, entity.FilesWorkflowName, fin, nil)
	r.waitPhase(ctx, fid, entity.PhaseStopped)
	f2 := r.ensure(ctx, fid, entity.FilesWorkflowName, fin, nil)
	require.Equal(t, f1.SandboxID, f2.SandboxID)
	r.delete(ctx, fid)
	r.save(ctx, fid, "files_lifecycle.json")
}

type recorder struct {
	t  *testing.T
	c  client.Client
	q  *db.Queries
	gw *daytona.Gateway
	tq string
}

// recorderOptions tune the Daytona the recorder's workflows talk to.
type recorderOptions struct {
	faults emulator.Faults
}

func newRecorder(t *testing.T) *recorder { return newRecorderWith(t, recorderOptions{}) }

func newRecorderWith(t *testing.T, opts recorderOptions) *recorder {
	t.Helper()
	pool, _ := testenv.Database(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	emu, err := emulator.New(ctx, emulator.Options{TransitionDelay: 20 * time.Millisecond, CronInterval: 100 * time.Millisecond,
		Faults: opts.faults, Logger: log})
	require.NoError(t, err)
	hs := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { hs.Close(); _ = emu.Close(); cancel() })
	gw, err := daytona.New(daytona.Config{APIURL: hs.URL + "/api", PollInterval: 20 * time.Millisecond, Logger: log})
	require.NoError(t, err)
	cfg, err := config.Load("", func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	c, _ := testenv.Temporal(t)
	acts := activities.New(cfg, pool, gw, log)
	acts.Temporal = c
	tq := "record-" + uuid.NewString()
	// Heartbeats, which carry cancellations to activities, are sent at once
	// rather than throttled to most of the heartbeat timeout.
	w := sdkworker.New(c, tq, sdkworker.Options{MaxHeartbeatThrottleInterval: 200 * time.Millisecond})
	workflows.Register(w)
	acts.Register(w)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &recorder{t: t, c: c, q: db.New(pool), gw: gw, tq: tq}
}

// ensure sends ensure-running as Update-With-Start, as the API does.
func (r *recorder) ensure(ctx context.Context, id, wfType string, in entity.Input, lease *entity.LeaseRequest) entity.EnsureResult {
	r.t.Helper()
	op := r.c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: id, TaskQueue: r.tq, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, wfType, in)
	reqID := uuid.NewString()
	h, err := r.c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{UpdateName: entity.UpdateEnsureRunning, UpdateID: reqID,
			WaitForStage: client.WorkflowUpdateStageCompleted,
			Args:         []any{entity.EnsureRequest{RequestID: reqID, Lease: lease, UsedAt: time.Now()}}},
	})
	require.NoError(r.t, err)
	var res entity.EnsureResult
	require.NoError(r.t, h.Get(ctx, &res))
	return res
}

func (r *recorder) waitPhase(ctx context.Context, id string, want entity.Phase) {
	r.t.Helper()
	testenv.Eventually(r.t, 30*time.Second, string(want)+" phase of "+id, func() bool {
		v, err := r.c.QueryWorkflow(ctx, id, "", entity.QueryState)
		if err != nil {
			return false
		}
		var st entity.State
		return v.Get(&st) == nil && st.Phase == want
	})
}

func (r *recorder) delete(ctx context.Context, id string) {
	r.t.Helper()
	h, err := r.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: entity.UpdateDelete,
		UpdateID: uuid.NewString(), WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{entity.DeleteRequest{}}})
	require.NoError(r.t, err)
	require.NoError(r.t, h.Get(ctx, nil))
	require.NoError(r.t, r.c.GetWorkflow(ctx, id, "").Get(ctx, nil))
}

func (r *recorder) save(ctx context.Context, id, file string) {
	r.t.Helper()
	it := r.c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var h historypb.History
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(r.t, err)
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
	require.NoError(r.t, err)
	require.NoError(r.t, os.WriteFile(filepath.Join("testdata", file), b, 0o644))
	r.t.Logf("wrote %d events to testdata/%s", len(h.Events), file)
}
