package daytona

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadbox/threadbox/emulator"
)

// These tests drive the gateway against the emulator's Daytona lifecycle facts: errored
// sandboxes and recovery, archived restores, organisation limits, the volume quota,
// inactive snapshots and list order.

// requestLog counts the requests the gateway sends, by "METHOD /path", and runs before (if
// set) ahead of each one, so a test can act "concurrently" at a precise moment.
type requestLog struct {
	base   http.RoundTripper
	before func(*http.Request)
	mu     sync.Mutex
	counts map[string]int
}

func (l *requestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.counts[r.Method+" "+r.URL.Path]++
	before := l.before
	l.mu.Unlock()
	if before != nil {
		before(r)
	}
	return l.base.RoundTrip(r)
}

func (l *requestLog) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[key]
}

func withRequestLog(l *requestLog) envOpt {
	l.base, l.counts = http.DefaultTransport, map[string]int{}
	return func(_ *emulator.Options, c *Config) { c.HTTPClient = &http.Client{Transport: l} }
}

func TestRecoverableErrorsAreRecovered(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	sb, tb := newSandbox(t, e, "tb-agent-broken-1", CreateSandboxParams{})
	if err := tb.Upload(ctx, "/home/daytona/work.txt", strings.NewReader("outside the volume")); err != nil {
		t.Fatal(err)
	}

	// Start recovers a recoverable error, and the sandbox keeps its files.
	if err := e.srv.BreakSandbox(sb.ID, true); err != nil {
		t.Fatal(err)
	}
	cur, err := e.g.GetSandbox(ctx, sb.ID)
	if err != nil || cur.State != StateError || !cur.Recoverable || cur.ErrorReason == "" {
		t.Fatalf("broken sandbox: %+v %v", cur, err)
	}
	started, err := e.g.StartSandbox(ctx, sb.ID)
	if err != nil || started.State != StateStarted || started.Recoverable {
		t.Fatalf("start of a recoverable error: %+v %v", started, err)
	}
	if got, err := readAll(t, tb, "/home/daytona/work.txt"); err != nil || got != "outside the volume" {
		t.Fatalf("files after recovery: %q %v", got, err)
	}

	// Stop recovers into stopped (Daytona refuses to stop an errored sandbox).
	if err := e.srv.BreakSandbox(sb.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("stop of a recoverable error: %v", err)
	}
	if cur, _ := e.g.GetSandbox(ctx, sb.ID); cur.State != StateStopped {
		t.Fatalf("after stop: %+v", cur)
	}

	// RecoverSandbox, explicitly; and FindOrCreateSandbox recovers too.
	if _, err := e.g.StartSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.BreakSandbox(sb.ID, true); err != nil {
		t.Fatal(err)
	}
	if got, err := e.g.RecoverSandbox(ctx, sb.ID); err != nil || got.State != StateStarted {
		t.Fatalf("recover: %+v %v", got, err)
	}
	_, err = e.g.RecoverSandbox(ctx, sb.ID)
	wantKind(t, err, ErrInvalidState, "recover of a healthy sandbox")
	if err := e.srv.BreakSandbox(sb.ID, true); err != nil {
		t.Fatal(err)
	}
	if got, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-broken-1"}); err != nil || got.ID != sb.ID || got.State != StateStarted {
		t.Fatalf("find-or-create of a recoverable error: %+v %v", got, err)
	}
}

func TestUnrecoverableErrorsAreReported(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	sb, _ := newSandbox(t, e, "tb-agent-dead-1", CreateSandboxParams{})
	if err := e.srv.BreakSandbox(sb.ID, false); err != nil {
		t.Fatal(err)
	}
	got, err := e.g.StartSandbox(ctx, sb.ID)
	wantKind(t, err, ErrInvalidState, "start")
	if got.ID != sb.ID || got.State != StateError || got.Recoverable {
		t.Fatalf("start returns the sandbox, unrecoverable: %+v", got)
	}
	if Retryable(err) {
		t.Fatal("an unrecoverable error is not retryable")
	}
	wantKind(t, e.g.StopSandbox(ctx, sb.ID), ErrInvalidState, "stop")
	_, err = e.g.RecoverSandbox(ctx, sb.ID)
	wantKind(t, err, ErrInvalidState, "recover")
	got, err = e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-dead-1"})
	wantKind(t, err, ErrInvalidState, "find-or-create")
	if got.ID != sb.ID || !got.State.Failed() {
		t.Fatalf("find-or-create returns the failed sandbox for deletion: %+v", got)
	}
	if err := e.g.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("delete of an errored sandbox: %v", err)
	}
	_, err = e.g.GetSandbox(ctx, sb.ID)
	wantKind(t, err, ErrNotFound, "after delete")
}

func TestStartOfArchivedWaitsForTheRestore(t *testing.T) {
	const restore = 1500 * time.Millisecond // Daytona: minutes
	var log requestLog
	e := newEnv(t, withRequestLog(&log), func(o *emulator.Options, _ *Config) { o.RestoreDelay = restore })
	ctx := testCtx(t)
	sb, _ := newSandbox(t, e, "tb-files-arch-1", CreateSandboxParams{})
	archive := func() {
		t.Helper()
		if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(mustRequest(t, http.MethodPost, e.api+"/sandbox/"+sb.ID+"/archive", ""))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("archive: %v %v", resp, err)
		}
		_ = resp.Body.Close()
		waitFor(t, func() bool { cur, _ := e.g.GetSandbox(ctx, sb.ID); return cur.State == StateArchived })
	}
	archive()

	// Two callers start it at once: one start request each at most, both wait the
	// restore out (the gateway used to re-send start and give up after five).
	startPath := "POST /api/sandbox/" + sb.ID + "/start"
	began := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := e.g.StartSandbox(ctx, sb.ID)
			if err == nil && got.State != StateStarted {
				err = errors.New("returned in state " + string(got.State))
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("start of archived: %v", err)
		}
	}
	if d := time.Since(began); d < restore {
		t.Fatalf("started after %v, before the restore delay", d)
	}
	if n := log.count(startPath); n > 2 {
		t.Fatalf("%d start requests for two callers: the gateway re-sent start while Daytona restored", n)
	}

	// FindOrCreateSandbox on an archived sandbox waits the same way.
	archive()
	before := log.count(startPath)
	if got, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-files-arch-1"}); err != nil || got.State != StateStarted {
		t.Fatalf("find-or-create of archived: %+v %v", got, err)
	}
	if n := log.count(startPath) - before; n != 1 {
		t.Fatalf("find-or-create sent %d start requests, want 1", n)
	}

	// Deleting an archived sandbox: Daytona keeps showing it archived until it is gone.
	archive()
	if err := e.g.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("delete of archived: %v", err)
	}
	if n := log.count("DELETE /api/sandbox/" + sb.ID); n != 1 {
		t.Fatalf("%d delete requests for an archived sandbox, want 1", n)
	}
}

func TestOrganisationLimitsAreTyped(t *testing.T) {
	e := newEnv(t, func(o *emulator.Options, _ *Config) { o.Limits = emulator.Limits{CPU: 1} })
	ctx := testCtx(t)
	first, _ := newSandbox(t, e, "tb-agent-cap-1", CreateSandboxParams{})
	_, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-cap-2"})
	de := wantKind(t, err, ErrOrgCapacity, "create over the CPU limit")
	if de.Status != http.StatusBadRequest || !strings.HasPrefix(de.Message, "Total CPU limit exceeded. Maximum allowed: 1.") {
		t.Fatalf("capacity error: %d %q", de.Status, de.Message)
	}
	if Retryable(err) {
		t.Fatal("capacity is not retryable: it frees only when other sandboxes stop")
	}
	if err := e.g.StopSandbox(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	newSandbox(t, e, "tb-agent-cap-2", CreateSandboxParams{})
	_, err = e.g.StartSandbox(ctx, first.ID)
	wantKind(t, err, ErrOrgCapacity, "start over the CPU limit")

	e.srv.SetLimits(emulator.Limits{Suspended: true, SuspensionReason: "Depleted credits"})
	_, err = e.g.StartSandbox(ctx, first.ID)
	de = wantKind(t, err, ErrOrgSuspended, "start while suspended")
	if de.Status != http.StatusForbidden {
		t.Fatalf("suspended: HTTP %d", de.Status)
	}
	_, err = e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-cap-3"})
	wantKind(t, err, ErrOrgSuspended, "create while suspended")
	_, err = e.g.EnsureVolume(ctx, "tb-vol-suspended")
	wantKind(t, err, ErrOrgSuspended, "volume while suspended")
}

func TestEnsureVolumeQuotaAndNameRace(t *testing.T) {
	var log requestLog
	e := newEnv(t, withRequestLog(&log), func(o *emulator.Options, _ *Config) { o.Limits = emulator.Limits{Volumes: 2} })
	ctx := testCtx(t)
	for _, name := range []string{"tb-vol-a", "tb-vol-b"} {
		if _, err := e.g.EnsureVolume(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.g.EnsureVolume(ctx, "tb-vol-c")
	de := wantKind(t, err, ErrVolumeQuota, "a third volume")
	if de.Message != "Volume quota exceeded. Maximum allowed: 2" {
		t.Fatalf("quota message: %q", de.Message)
	}
	if v, err := e.g.EnsureVolume(ctx, "tb-vol-a"); err != nil || v.Name != "tb-vol-a" {
		t.Fatalf("an existing volume at the limit: %+v %v", v, err)
	}

	// Another process creates the name between our GET (404) and our create. Below the
	// limit Daytona answers "already exists"; at the limit, "quota exceeded" (it checks the
	// quota first). Both are the name race: the volume is re-read and used.
	createElsewhere := func(name string) func(*http.Request) {
		var once sync.Once
		return func(r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/volumes") {
				once.Do(func() {
					resp, err := http.DefaultClient.Do(mustRequest(t, http.MethodPost, e.api+"/volumes", `{"name":"`+name+`"}`))
					if err != nil || resp.StatusCode != http.StatusOK {
						t.Errorf("concurrent create: %v %v", resp, err)
						return
					}
					_ = resp.Body.Close()
				})
			}
		}
	}
	e.srv.SetLimits(emulator.Limits{Volumes: 10})
	log.mu.Lock()
	log.before = createElsewhere("tb-vol-race-1")
	log.mu.Unlock()
	if v, err := e.g.EnsureVolume(ctx, "tb-vol-race-1"); err != nil || v.Name != "tb-vol-race-1" {
		t.Fatalf("name race below the limit: %+v %v", v, err)
	}
	e.srv.SetLimits(emulator.Limits{Volumes: 4}) // a, b, race-1 + the concurrent one
	log.mu.Lock()
	log.before = createElsewhere("tb-vol-race-2")
	log.mu.Unlock()
	if v, err := e.g.EnsureVolume(ctx, "tb-vol-race-2"); err != nil || v.Name != "tb-vol-race-2" {
		t.Fatalf("name race at the limit: %+v %v", v, err)
	}
}

func TestCreateFromInactiveSnapshotActivatesIt(t *testing.T) {
	// One "minute" = 100ms: the re-activation cooldown is a second. The snapshot is
	// deactivated by hand, as Daytona's idle sweep would (the sweep itself is the
	// emulator's TestConformanceIdleSnapshotsBecomeInactive): with the sweep left on
	// a short idle limit, a loaded machine could take longer than the limit between
	// the activation and the create, and the sweep would take the snapshot back.
	const unit = 100 * time.Millisecond
	var log requestLog
	e := newEnv(t, withRequestLog(&log), func(o *emulator.Options, _ *Config) {
		o.TimeUnit = unit
	})
	ctx := testCtx(t)
	s, err := e.g.CreateSnapshot(ctx, CreateSnapshotParams{Name: "tb-skills-idle", ImageName: "python:3.12-slim"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.g.WaitSnapshotActive(ctx, s.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.g.DeactivateSnapshot(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if cur, err := e.g.GetSnapshot(ctx, s.ID); err != nil || cur.State != SnapshotInactive {
		t.Fatalf("after deactivate: %+v %v", cur, err)
	}
	time.Sleep(10*unit + 250*time.Millisecond) // past Daytona's re-activation cooldown

	sb, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-idle-1", Snapshot: "tb-skills-idle", AutoStopMinutes: -1})
	if err != nil || sb.State != StateStarted || sb.Snapshot != "tb-skills-idle" {
		t.Fatalf("create from an inactive snapshot: %+v %v", sb, err)
	}
	if n := log.count("POST /api/sandbox"); n != 2 {
		t.Fatalf("%d creates, want 2 (refused, then after activation)", n)
	}
	if n := log.count("POST /api/snapshots/" + s.ID + "/activate"); n != 1 {
		t.Fatalf("%d activations, want 1", n)
	}
}

func TestListSandboxesOldestFirst(t *testing.T) {
	e := newEnv(t, func(_ *emulator.Options, c *Config) { c.ListPageSize = 1 })
	ctx := testCtx(t)
	labels := map[string]string{LabelKind: "order-test"}
	var ids []string
	for _, name := range []string{"tb-order-2", "tb-order-3", "tb-order-1"} {
		sb, _ := newSandbox(t, e, name, CreateSandboxParams{Labels: labels})
		ids = append(ids, sb.ID)
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.g.StopSandbox(ctx, ids[0]); err != nil { // a state change is activity
		t.Fatal(err)
	}
	names := func(order ...ListOrder) string {
		list, err := e.g.ListSandboxes(ctx, labels, order...)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, sb := range list {
			out = append(out, sb.Name)
		}
		return strings.Join(out, " ")
	}
	if got, want := names(OldestFirst), "tb-order-2 tb-order-3 tb-order-1"; got != want {
		t.Fatalf("oldest first: %s, want %s", got, want)
	}
	if got, want := names(), "tb-order-2 tb-order-1 tb-order-3"; got != want {
		t.Fatalf("Daytona's default (last activity): %s, want %s", got, want)
	}
}

// mustRequest builds a request straight to the emulator (not through the gateway).
func mustRequest(t testing.TB, method, url, jsonBody string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(jsonBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test-key")
	req.Header.Set("Content-Type", "application/json")
	return req
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition never became true")
		}
	}
}

func TestAutoArchiveInterval(t *testing.T) {
	// One "minute" = 50ms: archived 2 "minutes" after it stopped, then started again.
	e := newEnv(t, func(o *emulator.Options, _ *Config) { o.TimeUnit = 50 * time.Millisecond })
	ctx := testCtx(t)
	sb, _ := newSandbox(t, e, "tb-files-autoarch", CreateSandboxParams{AutoStopMinutes: -1, AutoArchiveMinutes: 2})
	if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { cur, _ := e.g.GetSandbox(ctx, sb.ID); return cur.State == StateArchived })
	if got, err := e.g.StartSandbox(ctx, sb.ID); err != nil || got.State != StateStarted {
		t.Fatalf("start after auto-archive: %+v %v", got, err)
	}
	if err := e.g.SetAutoArchive(ctx, sb.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if cur, _ := e.g.GetSandbox(ctx, sb.ID); cur.State != StateStopped {
		t.Fatalf("0 is Daytona's maximum (30 days), not now: %s", cur.State)
	}
}
