package workflows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	"github.com/threadbox/threadbox/skills"
	st "github.com/threadbox/threadbox/skills/skilltest"
	"github.com/threadbox/threadbox/workflows"
)

// TestRecordHistories drives real workflows of every type on a Temporal dev
// server, with the real activities against the emulator (Daytona faults
// injected per route where a path needs them) and a throwaway database, and
// writes their histories to testdata/ for TestReplayHistories. Run it after
// a change that is meant to alter the workflows' commands, under new file
// names (every committed history must keep replaying):
//
//	THREADBOX_RECORD_HISTORIES=1 go test ./workflows -run TestRecordHistories -count=1
func TestRecordHistories(t *testing.T) {
	if os.Getenv("THREADBOX_RECORD_HISTORIES") != "1" {
		t.Skip("set THREADBOX_RECORD_HISTORIES=1 to re-record testdata/ histories")
	}
	t.Run("entities", recordEntityHistories)
	t.Run("skills", recordSkillHistories)
}

// Version tags in the names of the histories this code records: the
// entity workflows' version (versions.go), and v0 for the skills, snapshot
// and reconcile workflows, which have no version gate yet. Raise a tag with
// the version whose commands a change alters; save never overwrites a
// committed history.
const (
	entityVersionTag = "v1"
	otherVersionTag  = "v0"
)

func recordEntityHistories(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := &routeFaults{}
	r := newRecorderWith(t, recorderOptions{intercept: f.intercept})
	cfg := entity.Config{AutoStop: 2 * time.Second, AutoDelete: 3 * time.Second}
	name := func(scenario string) string { return fmt.Sprintf("thread_%s_%s.json", entityVersionTag, scenario) }

	// The ladder: create, touch, a command under a lease released with its
	// use, idle stop, restart, auto-delete, recreate (generation 2), delete.
	tin, tid := r.thread(ctx, "ladder", cfg)
	first := r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	require.True(t, first.Created)
	require.NoError(t, r.c.SignalWorkflow(ctx, tid, "", entity.SignalTouch, entity.TouchSignal{At: time.Now()}))
	r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, &entity.LeaseRequest{ID: "cmd", TTL: 4 * time.Second})
	time.Sleep(time.Second)
	require.NoError(t, r.c.SignalWorkflow(ctx, tid, "", entity.SignalReleaseLease, entity.ReleaseLeaseSignal{LeaseID: "cmd", UsedAt: time.Now()}))
	r.waitPhase(ctx, tid, entity.PhaseStopped)
	again := r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	require.Equal(t, first.SandboxID, again.SandboxID)
	r.waitPhase(ctx, tid, entity.PhaseDeleted)
	next := r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	require.Equal(t, 2, next.Generation)
	r.delete(ctx, tid)
	r.save(ctx, tid, name("lifecycle"))

	// Files session: create, idle stop, restart, delete.
	fin := entity.Input{Kind: entity.KindFiles, UserID: "rec-user", Config: entity.Config{AutoStop: 2 * time.Second}}
	fid := entity.Files(fin.UserID).WorkflowID()
	f1 := r.ensure(ctx, fid, entity.FilesWorkflowName, fin, nil)
	r.waitPhase(ctx, fid, entity.PhaseStopped)
	f2 := r.ensure(ctx, fid, entity.FilesWorkflowName, fin, nil)
	require.Equal(t, f1.SandboxID, f2.SandboxID)
	r.delete(ctx, fid)
	r.save(ctx, fid, fmt.Sprintf("files_%s_lifecycle.json", entityVersionTag))

	// Stop retry: Daytona refuses two stops; the loop retries with a
	// growing delay. The thread is then deleted by signal.
	tin, tid = r.thread(ctx, "stop-retry", cfg)
	r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	f.set(http.MethodPost, "/stop", http.StatusBadRequest, 2)
	r.waitPhase(ctx, tid, entity.PhaseStopped)
	require.Zero(t, f.left(), "both stops were refused")
	r.deleteBySignal(ctx, tid, tin)
	r.save(ctx, tid, name("stop_retry"))

	// Failed create: Daytona refuses the first create; the next use creates.
	tin, tid = r.thread(ctx, "create-failed", cfg)
	f.set(http.MethodPost, "/api/sandbox", http.StatusBadRequest, 1)
	_, err := r.ensureErr(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	require.ErrorContains(t, err, "sandbox unavailable")
	r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	r.delete(ctx, tid)
	r.save(ctx, tid, name("create_failed"))

	// Lost sandbox: deleted behind the workflow's back while stopped; the
	// next use finds it gone and creates generation 2.
	tin, tid = r.thread(ctx, "lost", cfg)
	lost := r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	r.waitPhase(ctx, tid, entity.PhaseStopped)
	require.NoError(t, r.gw.DeleteSandbox(ctx, lost.SandboxID))
	recreated := r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	require.Equal(t, 2, recreated.Generation)
	r.delete(ctx, tid)
	r.save(ctx, tid, name("lost"))

	// Suspect: stopped behind the workflow's back while it runs; the API
	// names it in the next ensure and the workflow starts it again.
	tin, tid = r.thread(ctx, "suspect", entity.Config{AutoStop: time.Minute, AutoDelete: time.Minute})
	sus := r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil)
	require.NoError(t, r.gw.StopSandbox(ctx, sus.SandboxID))
	back := r.ensureWith(ctx, tid, entity.ThreadWorkflowName, tin, entity.EnsureRequest{SuspectSandboxID: sus.SandboxID})
	require.Equal(t, sus.SandboxID, back.SandboxID)
	r.delete(ctx, tid)
	r.save(ctx, tid, name("suspect"))

	// Refresh failure: under a lease Daytona refuses four refreshes (a whole
	// activity, then one attempt of the retry); the refresh is retried on
	// a short timer until it succeeds.
	tin, tid = r.thread(ctx, "refresh-failed", cfg)
	f.set(http.MethodPost, "/last-activity", http.StatusServiceUnavailable, 4)
	r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, &entity.LeaseRequest{ID: "long", TTL: 10 * time.Second})
	testenv.Eventually(t, 30*time.Second, "four refused refreshes", func() bool { return f.left() == 0 })
	r.waitPhase(ctx, tid, entity.PhaseStopped)
	r.delete(ctx, tid)
	r.save(ctx, tid, name("refresh_failed"))

	// Refresh finds the sandbox gone: the generation is lost at once and
	// the next use creates generation 2.
	tin, tid = r.thread(ctx, "refresh-lost", cfg)
	gone := r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, &entity.LeaseRequest{ID: "long", TTL: time.Minute})
	require.NoError(t, r.gw.DeleteSandbox(ctx, gone.SandboxID))
	r.waitPhase(ctx, tid, entity.PhaseDeleted)
	require.Equal(t, 2, r.ensure(ctx, tid, entity.ThreadWorkflowName, tin, nil).Generation)
	r.delete(ctx, tid)
	r.save(ctx, tid, name("refresh_lost"))

	// Delete while the create is stuck behind a slow Daytona: the delete
	// signal cancels the create and ends the workflow.
	tin, tid = r.thread(ctx, "delete-stuck", cfg)
	f.hold(http.MethodPost, "/api/sandbox")
	actx, acancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = r.ensureErr(actx, tid, entity.ThreadWorkflowName, tin, nil)
	acancel()
	require.Error(t, err, "the create is stuck")
	r.deleteBySignal(ctx, tid, tin)
	f.release()
	r.save(ctx, tid, name("delete_during_create"))
}

func recordSkillHistories(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := newRecorder(t)

	// A valid skill: validated, then built into snapshot v1 by the builder
	// (started by the validation), which promotes it.
	valid := r.addSkill(ctx, st.TarGz(st.Valid("recorded", "")...))
	vid := workflows.SkillWorkflowID(valid.Name, valid.Version)
	r.run(ctx, vid, workflows.SkillValidationWorkflowName, workflows.SkillValidationInput{
		SkillID: valid.ID.String(), Name: valid.Name, Version: valid.Version, Actor: "rec-admin"})
	require.NoError(t, r.c.GetWorkflow(ctx, workflows.SnapshotBuilderWorkflowID, "").Get(ctx, nil))
	r.save(ctx, vid, "skill_validation_"+otherVersionTag+"_valid.json")
	r.save(ctx, workflows.SnapshotBuilderWorkflowID, "snapshot_builder_"+otherVersionTag+".json")
	r.save(ctx, workflows.SnapshotBuildWorkflowID(1), "snapshot_build_"+otherVersionTag+".json")

	// An invalid skill: its check fails; nothing is built.
	invalid := r.addSkill(ctx, st.TarGz(st.Valid("failing", "exit 3")...))
	iid := workflows.SkillWorkflowID(invalid.Name, invalid.Version)
	r.run(ctx, iid, workflows.SkillValidationWorkflowName, workflows.SkillValidationInput{
		SkillID: invalid.ID.String(), Name: invalid.Name, Version: invalid.Version, Actor: "rec-admin"})
	r.save(ctx, iid, "skill_validation_"+otherVersionTag+"_invalid.json")

	// A rollback to the base snapshot.
	aid := workflows.SnapshotRollbackWorkflowID(time.Now())
	r.run(ctx, aid, workflows.SnapshotActivationWorkflowName, workflows.ActivationInput{SnapshotID: 0, Actor: "rec-admin", Reason: "recording"})
	r.save(ctx, aid, "snapshot_activation_"+otherVersionTag+".json")

	// A reconcile pass that deletes an orphan (a sandbox of a thread with no
	// workflow).
	_, err := r.acts.EnsureSandbox(ctx, activities.EnsureSandboxInput{Kind: entity.KindThread, UserID: "rec-user", ThreadID: "orphan",
		Generation: 1, AutoStop: time.Minute, AutoDelete: time.Minute})
	require.NoError(t, err)
	rid := workflows.ReconcileScheduleID + "-recorded"
	var res activities.ReconcileResult
	r.runResult(ctx, rid, workflows.ReconcileWorkflowName, workflows.ReconcileWorkflowInput{GracePeriod: time.Nanosecond}, &res)
	require.Len(t, res.Deleted, 1)
	r.save(ctx, rid, "reconcile_"+otherVersionTag+".json")
}

type recorder struct {
	t    *testing.T
	c    client.Client
	q    *db.Queries
	gw   *daytona.Gateway
	acts *activities.Activities
	tq   string
}

// recorderOptions tune the Daytona the recorder's workflows talk to.
type recorderOptions struct {
	faults emulator.Faults
	// intercept may answer a Daytona request itself (a fault on one
	// route); false lets the emulator answer.
	intercept func(w http.ResponseWriter, r *http.Request) bool
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
	handler := emu.Handler()
	if opts.intercept != nil {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !opts.intercept(w, r) {
				emu.Handler().ServeHTTP(w, r)
			}
		})
	}
	hs := httptest.NewServer(handler)
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
	return &recorder{t: t, c: c, q: db.New(pool), gw: gw, acts: acts, tq: tq}
}

// thread creates the row of a recorded thread and returns its input and
// workflow id.
func (r *recorder) thread(ctx context.Context, thread string, cfg entity.Config) (entity.Input, string) {
	r.t.Helper()
	const user = "rec-user"
	_, err := r.q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: user, ThreadID: thread})
	require.NoError(r.t, err)
	return entity.Input{Kind: entity.KindThread, UserID: user, ThreadID: thread, Config: cfg}, entity.Thread(user, thread).WorkflowID()
}

// ensure sends ensure-running as Update-With-Start, as the API does.
func (r *recorder) ensure(ctx context.Context, id, wfType string, in entity.Input, lease *entity.LeaseRequest) entity.EnsureResult {
	r.t.Helper()
	res, err := r.ensureErr(ctx, id, wfType, in, lease)
	require.NoError(r.t, err)
	return res
}

func (r *recorder) ensureErr(ctx context.Context, id, wfType string, in entity.Input, lease *entity.LeaseRequest) (entity.EnsureResult, error) {
	return r.send(ctx, id, wfType, in, entity.EnsureRequest{Lease: lease})
}

// ensureWith sends a prepared request (request id and use time are filled in).
func (r *recorder) ensureWith(ctx context.Context, id, wfType string, in entity.Input, req entity.EnsureRequest) entity.EnsureResult {
	r.t.Helper()
	res, err := r.send(ctx, id, wfType, in, req)
	require.NoError(r.t, err)
	return res
}

func (r *recorder) send(ctx context.Context, id, wfType string, in entity.Input, req entity.EnsureRequest) (entity.EnsureResult, error) {
	req.RequestID, req.UsedAt = uuid.NewString(), time.Now()
	h, err := r.c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: r.c.NewWithStartWorkflowOperation(r.startOptions(id), wfType, in),
		UpdateOptions: client.UpdateWorkflowOptions{UpdateName: entity.UpdateEnsureRunning, UpdateID: req.RequestID,
			WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{req}},
	})
	if err != nil {
		return entity.EnsureResult{}, err
	}
	var res entity.EnsureResult
	err = h.Get(ctx, &res)
	return res, err
}

func (r *recorder) startOptions(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: id, TaskQueue: r.tq, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}
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

// delete sends the delete update and waits for the run to close.
func (r *recorder) delete(ctx context.Context, id string) {
	r.t.Helper()
	h, err := r.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: entity.UpdateDelete,
		UpdateID: uuid.NewString(), WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{entity.DeleteRequest{}}})
	require.NoError(r.t, err)
	require.NoError(r.t, h.Get(ctx, nil))
	require.NoError(r.t, r.c.GetWorkflow(ctx, id, "").Get(ctx, nil))
}

// deleteBySignal sends the delete signal (with start, as the API may) and
// waits for the run to close.
func (r *recorder) deleteBySignal(ctx context.Context, id string, in entity.Input) {
	r.t.Helper()
	_, err := r.c.SignalWithStartWorkflow(ctx, id, entity.SignalDelete, entity.DeleteRequest{RequestID: uuid.NewString(), Cause: activities.CauseUserDelete},
		r.startOptions(id), in.Kind.WorkflowName(), in)
	require.NoError(r.t, err)
	require.NoError(r.t, r.c.GetWorkflow(ctx, id, "").Get(ctx, nil))
}

// run starts a workflow and waits for it to complete.
func (r *recorder) run(ctx context.Context, id, wfType string, in any) {
	r.t.Helper()
	r.runResult(ctx, id, wfType, in, nil)
}

func (r *recorder) runResult(ctx context.Context, id, wfType string, in, out any) {
	r.t.Helper()
	run, err := r.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: r.tq}, wfType, in)
	require.NoError(r.t, err)
	require.NoError(r.t, run.Get(ctx, out))
}

// recordedSkill is a stored skill version.
type recordedSkill struct {
	ID      uuid.UUID
	Name    string
	Version int
}

// addSkill stores an archive as a new skill version in "validating", as the
// upload route does.
func (r *recorder) addSkill(ctx context.Context, archive []byte) recordedSkill {
	r.t.Helper()
	b, err := skills.Parse(archive, skills.DefaultLimits())
	require.NoError(r.t, err)
	v, err := r.q.NextSkillVersion(ctx, b.Manifest.Name)
	require.NoError(r.t, err)
	m, err := json.Marshal(b.Manifest)
	require.NoError(r.t, err)
	row, err := r.q.CreateSkill(ctx, db.CreateSkillParams{
		ID: uuid.New(), Name: b.Manifest.Name, Version: v, Description: b.Manifest.Description, Archive: archive,
		ArchiveFormat: string(b.Format), Manifest: m, WorkflowID: workflows.SkillWorkflowID(b.Manifest.Name, int(v)), CreatedBy: "rec-admin",
	})
	require.NoError(r.t, err)
	return recordedSkill{ID: row.ID, Name: row.Name, Version: int(row.Version)}
}

// save writes the history of workflow id to testdata/file, unless that file
// exists: a committed history is never replaced (open workflows may be
// replaying it), only joined by histories under new names.
func (r *recorder) save(ctx context.Context, id, file string) {
	r.t.Helper()
	path := filepath.Join("testdata", file)
	if _, err := os.Stat(path); err == nil {
		r.t.Logf("kept testdata/%s (committed histories are never re-recorded)", file)
		return
	}
	it := r.c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var h historypb.History
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(r.t, err)
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
	require.NoError(r.t, err)
	require.NoError(r.t, os.WriteFile(path, b, 0o644))
	r.t.Logf("wrote %d events to testdata/%s", len(h.Events), file)
}

// routeFaults answers chosen Daytona requests with an error (as Daytona does
// in an outage or when it refuses an operation), or holds them until
// released (a create stuck behind a slow Daytona).
type routeFaults struct {
	mu             sync.Mutex
	method, suffix string
	status, times  int
	held           chan struct{}
}

// set answers the next `times` requests of method whose path ends in suffix
// with status.
func (f *routeFaults) set(method, suffix string, status, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.method, f.suffix, f.status, f.times = method, suffix, status, times
}

// hold keeps requests of method whose path ends in suffix waiting until
// release (or until their client gives up).
func (f *routeFaults) hold(method, suffix string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.method, f.suffix, f.held = method, suffix, make(chan struct{})
}

func (f *routeFaults) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held != nil {
		close(f.held)
		f.held = nil
	}
	f.method, f.suffix = "", ""
}

// left is how many refusals are still to come.
func (f *routeFaults) left() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.times
}

func (f *routeFaults) intercept(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	match := f.method == r.Method && f.suffix != "" && strings.HasSuffix(r.URL.Path, f.suffix)
	held := f.held
	refuse := match && held == nil && f.times > 0
	if refuse {
		f.times--
	}
	status := f.status
	f.mu.Unlock()
	switch {
	case match && held != nil:
		select {
		case <-held:
		case <-r.Context().Done():
			return true // the caller gave up; the request never reached Daytona
		}
		return false
	case refuse:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": status, "message": "injected by the recorder", "error": http.StatusText(status)})
		return true
	}
	return false
}
