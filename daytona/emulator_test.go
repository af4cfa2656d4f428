package daytona

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadbox/threadbox/emulator"
)

// env is one in-process emulator plus a gateway pointed at it.
type env struct {
	srv *emulator.Server
	hs  *httptest.Server
	g   *Gateway
	api string
}

type envOpt func(*emulator.Options, *Config)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	eo := emulator.Options{
		APIKey:          "test-key",
		TransitionDelay: 20 * time.Millisecond,
		CronInterval:    50 * time.Millisecond,
		Activity:        emulator.ActivityTimings{Flush: 50 * time.Millisecond},
		Logger:          slog.New(slog.DiscardHandler),
	}
	cfg := Config{
		APIKey:       "test-key",
		PollInterval: 10 * time.Millisecond,
		WaitTimeout:  time.Minute,
		Logger:       slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&eo, &cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := emulator.New(ctx, eo)
	if err != nil {
		cancel()
		t.Fatalf("emulator: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		cancel()
	})
	cfg.APIURL = hs.URL + "/api"
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, hs: hs, g: g, api: cfg.APIURL}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func wantKind(t testing.TB, err, kind error, what string) *Error {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: want %v, got %v", what, kind, err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: not an *Error: %T", what, err)
	}
	return e
}

func TestSandboxLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	name := SandboxName("agent", "t1", 1)
	p := CreateSandboxParams{
		Name:              name,
		Labels:            Labels("agent", "u1", "t1"),
		Env:               map[string]string{"GREETING": "hello"},
		AutoStopMinutes:   20,
		AutoDeleteMinutes: 150,
	}
	sb, err := e.g.FindOrCreateSandbox(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if sb.State != StateStarted || sb.Name != name || sb.ID == "" {
		t.Fatalf("created: %+v", sb)
	}
	if sb.Labels[LabelManagedBy] != "threadbox" || sb.Labels[LabelThread] != "t1" {
		t.Fatalf("labels: %v", sb.Labels)
	}
	if sb.AutoStopMinutes != 20 || sb.AutoDeleteMinutes != 150 {
		t.Fatalf("intervals: %d %d", sb.AutoStopMinutes, sb.AutoDeleteMinutes)
	}
	if want := e.hs.URL + "/toolbox/" + sb.ID; sb.ToolboxURL != want {
		t.Fatalf("toolbox url %q, want %q", sb.ToolboxURL, want)
	}
	if sb.CreatedAt.IsZero() || sb.LastActivityAt.IsZero() {
		t.Fatalf("timestamps not parsed: %+v", sb)
	}
	out, err := e.g.Toolbox(sb.ID, sb.ToolboxURL).Exec(ctx, ExecRequest{Command: "echo $GREETING"})
	if err != nil || strings.TrimSpace(out.Output) != "hello" {
		t.Fatalf("sandbox env: %q %v", out.Output, err)
	}

	again, err := e.g.FindOrCreateSandbox(ctx, p)
	if err != nil || again.ID != sb.ID {
		t.Fatalf("second find-or-create: %v %v (want id %s)", again.ID, err, sb.ID)
	}
	byName, err := e.g.GetSandbox(ctx, name)
	if err != nil || byName.ID != sb.ID {
		t.Fatalf("get by name: %+v %v", byName, err)
	}

	// Defaults rule: 0 leaves Daytona's defaults (auto-stop 15, auto-delete disabled).
	def, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: SandboxName("agent", "t-defaults", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if def.AutoStopMinutes != 15 || def.AutoDeleteMinutes != -1 {
		t.Fatalf("default intervals: %d %d", def.AutoStopMinutes, def.AutoDeleteMinutes)
	}

	// Daytona stores a keep-alive at its next activity flush (the emulator's is 50ms here).
	before := sb.LastActivityAt
	time.Sleep(20 * time.Millisecond)
	if err := e.g.RefreshActivity(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cur, _ := e.g.GetSandbox(ctx, sb.ID)
		if cur.LastActivityAt.After(before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last activity not refreshed: %v -> %v", before, cur.LastActivityAt)
		}
	}

	if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if cur, _ := e.g.GetSandbox(ctx, sb.ID); cur.State != StateStopped {
		t.Fatalf("after stop: %s", cur.State)
	}
	if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("stop of stopped sandbox must succeed: %v", err)
	}
	started, err := e.g.StartSandbox(ctx, sb.ID)
	if err != nil || started.State != StateStarted {
		t.Fatalf("start: %+v %v", started, err)
	}
	if again, err := e.g.StartSandbox(ctx, sb.ID); err != nil || again.State != StateStarted {
		t.Fatalf("start of started: %v", err)
	}
	// Find-or-create of a stopped sandbox starts it.
	if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if again, err := e.g.FindOrCreateSandbox(ctx, p); err != nil || again.ID != sb.ID || again.State != StateStarted {
		t.Fatalf("find-or-create of stopped: %+v %v", again, err)
	}

	if err := e.g.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.g.GetSandbox(ctx, sb.ID)
	wantKind(t, err, ErrNotFound, "get after delete")
	if err := e.g.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("delete of a missing sandbox must succeed: %v", err)
	}
	if err := e.g.DeleteSandbox(ctx, "no-such-sandbox"); err != nil {
		t.Fatalf("delete of an unknown sandbox must succeed: %v", err)
	}
	// The name is free again: a new generation can reuse it.
	fresh, err := e.g.FindOrCreateSandbox(ctx, p)
	if err != nil || fresh.ID == sb.ID {
		t.Fatalf("recreate after delete: %+v %v", fresh, err)
	}
}

// TestStopWhileStartingAndDeleteWhileStopping drives the 409 paths: the gateway waits for
// the transition in progress and then does what was asked.
func TestStopWhileStartingAndDeleteWhileStopping(t *testing.T) {
	e := newEnv(t, func(o *emulator.Options, _ *Config) { o.TransitionDelay = 300 * time.Millisecond })
	ctx := testCtx(t)
	sb, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-race-1"})
	if err != nil {
		t.Fatal(err)
	}
	// Raw stop returns at once (stopping); a raw start now is a 409 transition conflict.
	if _, resp, err := e.g.api.SandboxAPI.StopSandbox(e.g.actx(ctx), sb.ID).Execute(); err != nil {
		t.Fatal(mapErr("stop", classLifecycle, resp, err))
	}
	_, resp, err := e.g.api.SandboxAPI.StartSandbox(e.g.actx(ctx), sb.ID).Execute()
	ce := wantKind(t, mapErr("start", classLifecycle, resp, err), ErrConflict, "start while stopping")
	if ce.Status != 409 || !Retryable(ce) {
		t.Fatalf("conflict: %+v", ce)
	}
	// The gateway's start waits out the stop and starts.
	if got, err := e.g.StartSandbox(ctx, sb.ID); err != nil || got.State != StateStarted {
		t.Fatalf("start while stopping: %+v %v", got, err)
	}
	// Delete while stopping: 409 on the wire, success through the gateway.
	if _, resp, err := e.g.api.SandboxAPI.StopSandbox(e.g.actx(ctx), sb.ID).Execute(); err != nil {
		t.Fatal(mapErr("stop", classLifecycle, resp, err))
	}
	if err := e.g.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("delete while stopping: %v", err)
	}
	_, err = e.g.GetSandbox(ctx, sb.ID)
	wantKind(t, err, ErrNotFound, "after delete")
}

func TestTypedErrorsFromEmulator(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)

	_, err := e.g.GetSandbox(ctx, "does-not-exist")
	nf := wantKind(t, err, ErrNotFound, "unknown sandbox")
	if nf.Status != 404 || nf.Message == "" || Retryable(err) {
		t.Fatalf("not found: %+v", nf)
	}
	_, err = e.g.StartSandbox(ctx, "does-not-exist")
	wantKind(t, err, ErrNotFound, "start unknown sandbox")

	sb, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-errs-1"})
	if err != nil {
		t.Fatal(err)
	}
	// Duplicate name on the wire is 409.
	_, resp, err := e.g.api.SandboxAPI.CreateSandbox(e.g.actx(ctx)).CreateSandbox(e.g.createBody(CreateSandboxParams{Name: sb.Name})).Execute()
	dup := wantKind(t, mapErr("create", classPlain, resp, err), ErrConflict, "duplicate create")
	if dup.Status != 409 || !strings.Contains(dup.Message, sb.Name) {
		t.Fatalf("duplicate: %+v", dup)
	}
	// Invalid state: stopping a stopped sandbox is 400 on the wire.
	if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	_, resp, err = e.g.api.SandboxAPI.StopSandbox(e.g.actx(ctx), sb.ID).Execute()
	inv := wantKind(t, mapErr("stop", classLifecycle, resp, err), ErrInvalidState, "stop of stopped (raw)")
	if inv.Status != 400 || Retryable(inv) {
		t.Fatalf("invalid state: %+v", inv)
	}
	// Toolbox of a stopped sandbox: 400 → bad request, not a transport error.
	_, err = e.g.Toolbox(sb.ID, sb.ToolboxURL).Exec(ctx, ExecRequest{Command: "true"})
	wantKind(t, err, ErrBadRequest, "exec in stopped sandbox")
	if _, err := e.g.StartSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	// Execute timeout → 408 → ErrTimeout.
	start := time.Now()
	_, err = e.g.Toolbox(sb.ID, sb.ToolboxURL).Exec(ctx, ExecRequest{Command: "sleep 5", Timeout: time.Second})
	to := wantKind(t, err, ErrTimeout, "exec timeout")
	if to.Status != 408 || time.Since(start) > 4*time.Second {
		t.Fatalf("timeout: %+v after %v", to, time.Since(start))
	}
	// Bad request: snapshot from a :latest image.
	_, err = e.g.CreateSnapshot(ctx, CreateSnapshotParams{Name: "bad", ImageName: "python:latest"})
	wantKind(t, err, ErrBadRequest, "latest image")
	// Missing files.
	_, err = e.g.Toolbox(sb.ID, sb.ToolboxURL).Stat(ctx, "/home/daytona/nope")
	wantKind(t, err, ErrNotFound, "stat missing")
	// Wrong key → 401 → bad request (not retryable).
	bad, _ := New(Config{APIURL: e.api, APIKey: "wrong"})
	_, err = bad.GetSandbox(ctx, sb.ID)
	if ae := wantKind(t, err, ErrBadRequest, "bad key"); ae.Status != 401 {
		t.Fatalf("bad key: %+v", ae)
	}
}

// dropFirstCreate forwards the first POST /api/sandbox to the server and then pretends the
// connection broke, like a response lost on the way back.
type dropFirstCreate struct {
	base    http.RoundTripper
	mu      sync.Mutex
	dropped bool
}

func (d *dropFirstCreate) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.base.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/api/sandbox") {
		return resp, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dropped {
		return resp, err
	}
	d.dropped = true
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, errors.New("simulated: connection reset after the request was processed")
}

func TestIdempotentCreateAfterLostResponse(t *testing.T) {
	rt := &dropFirstCreate{base: http.DefaultTransport}
	e := newEnv(t, func(_ *emulator.Options, c *Config) { c.HTTPClient = &http.Client{Transport: rt} })
	ctx := testCtx(t)
	p := CreateSandboxParams{Name: SandboxName("agent", "lost", 1), Labels: Labels("agent", "u-lost", "lost")}
	_, err := e.g.FindOrCreateSandbox(ctx, p)
	wantKind(t, err, ErrUnavailable, "lost create response")
	if !Retryable(err) || !rt.dropped {
		t.Fatalf("lost response must be retryable: %v", err)
	}
	sb, err := e.g.FindOrCreateSandbox(ctx, p)
	if err != nil || sb.State != StateStarted {
		t.Fatalf("retry: %+v %v", sb, err)
	}
	list, err := e.g.ListSandboxes(ctx, map[string]string{LabelThread: "lost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != sb.ID {
		t.Fatalf("want exactly the one sandbox, got %+v", list)
	}
}

// listCounter counts GET /api/sandbox (list) requests and whether any carried a cursor.
type listCounter struct {
	base    http.RoundTripper
	mu      sync.Mutex
	lists   int
	cursors int
}

func (l *listCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/api/sandbox") {
		l.mu.Lock()
		l.lists++
		if r.URL.Query().Get("cursor") != "" {
			l.cursors++
		}
		l.mu.Unlock()
	}
	return l.base.RoundTrip(r)
}

func TestListByLabelsAcrossPages(t *testing.T) {
	lc := &listCounter{base: http.DefaultTransport}
	e := newEnv(t, func(_ *emulator.Options, c *Config) {
		c.ListPageSize = 2
		c.HTTPClient = &http.Client{Transport: lc}
	})
	ctx := testCtx(t)
	want := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 7 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "u-a"
			if i >= 5 {
				user = "u-b"
			}
			sb, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{
				Name:   SandboxName("agent", "list"+string(rune('0'+i)), 1),
				Labels: Labels("agent", user, "list"+string(rune('0'+i))),
			})
			if err != nil {
				errs <- err
				return
			}
			if user == "u-a" {
				mu.Lock()
				want[sb.ID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := e.g.ListSandboxes(ctx, map[string]string{LabelManagedBy: LabelManagedByValue, LabelUser: "u-a"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range got {
		if !want[s.ID] || seen[s.ID] {
			t.Fatalf("unexpected or duplicate item %s (%v)", s.ID, s.Labels)
		}
		seen[s.ID] = true
		if s.ToolboxURL == "" || s.State == "" {
			t.Fatalf("list item not converted: %+v", s)
		}
	}
	if len(seen) != 5 {
		t.Fatalf("want 5 sandboxes of u-a over 3 pages, got %d", len(seen))
	}
	lc.mu.Lock()
	pages, cursors := lc.lists, lc.cursors
	lc.mu.Unlock()
	if pages != 3 || cursors != 2 {
		t.Fatalf("want 3 list requests (2 with a cursor) for 5 items at page size 2, got %d (%d)", pages, cursors)
	}
	all, err := e.g.ListSandboxes(ctx, nil)
	if err != nil || len(all) != 7 {
		t.Fatalf("unfiltered list: %d %v", len(all), err)
	}
}

// TestConcurrentFindOrCreateAndEnsureVolume: racing creators of one name end with one
// sandbox (409 duplicate → re-read) and one volume (400 duplicate → re-read).
func TestConcurrentFindOrCreateAndEnsureVolume(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	const n = 6
	ids := make(chan string, n)
	vols := make(chan string, n)
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			sb, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-race-create-1", Labels: Labels("agent", "u-race", "race")})
			if err != nil {
				errs <- err
				return
			}
			ids <- sb.ID
		}()
		go func() {
			defer wg.Done()
			v, err := e.g.EnsureVolume(ctx, "tb-vol-race")
			if err != nil {
				errs <- err
				return
			}
			vols <- v.ID
		}()
	}
	wg.Wait()
	close(ids)
	close(vols)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	distinct := func(c chan string) int {
		m := map[string]bool{}
		for id := range c {
			m[id] = true
		}
		return len(m)
	}
	if d := distinct(ids); d != 1 {
		t.Fatalf("%d distinct sandboxes for one name", d)
	}
	if d := distinct(vols); d != 1 {
		t.Fatalf("%d distinct volumes for one name", d)
	}
	list, err := e.g.ListSandboxes(ctx, map[string]string{LabelThread: "race"})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %d %v", len(list), err)
	}
}

// TestStopEphemeralSandbox: with auto-delete 0 Daytona deletes on stop; StopSandbox treats
// the disappearance as success.
func TestStopEphemeralSandbox(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	sb, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: "tb-agent-eph-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.g.SetAutoDelete(ctx, sb.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.g.SetAutoStop(ctx, sb.ID, 30); err != nil {
		t.Fatal(err)
	}
	if cur, _ := e.g.GetSandbox(ctx, sb.ID); cur.AutoDeleteMinutes != 0 || cur.AutoStopMinutes != 30 {
		t.Fatalf("intervals not set: %+v", cur)
	}
	if err := e.g.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("stop of ephemeral: %v", err)
	}
	_, err = e.g.GetSandbox(ctx, sb.ID)
	wantKind(t, err, ErrNotFound, "ephemeral after stop")
}

func TestStopMissingIsNotFound(t *testing.T) {
	e := newEnv(t)
	err := e.g.StopSandbox(testCtx(t), "tb-agent-never-existed-1")
	wantKind(t, err, ErrNotFound, "stop of missing sandbox")
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	if err := e.g.Health(testCtx(t)); err != nil {
		t.Fatalf("health against the emulator: %v", err)
	}
	e.hs.Close()
	wantKind(t, e.g.Health(testCtx(t)), ErrUnavailable, "health when down")
}

// A sandbox found under the requested name is adopted only when its ownership labels
// agree: a name collision never hands one user another user's sandbox.
func TestFindOrCreateRefusesAForeignSandbox(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	name := SandboxName("agent", "shared-name", 1)
	owner, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: name, Labels: Labels("agent", "alice", "t")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: name, Labels: Labels("agent", "mallory", "t")})
	wantKind(t, err, ErrNotOwned, "a sandbox labelled for another user")
	if Retryable(err) {
		t.Fatalf("ErrNotOwned must not be retried: %v", err)
	}
	again, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: name, Labels: Labels("agent", "alice", "t")})
	if err != nil || again.ID != owner.ID {
		t.Fatalf("the owner still finds its sandbox: %+v %v", again, err)
	}
}
