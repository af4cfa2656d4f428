package daytona

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadbox/threadbox/emulator"
)

// retry is the simple caller the brief asks for (Temporal plays this role in production):
// repeat while the error is Retryable, waiting RetryAfter (or a short backoff).
func retry(ctx context.Context, stats map[error]int, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !Retryable(err) || attempt >= 50 {
			return err
		}
		for _, k := range []error{ErrUnavailable, ErrConflict, ErrRateLimited} {
			if errors.Is(err, k) {
				stats[k]++
			}
		}
		d := RetryAfter(err)
		if d == 0 {
			d = 5 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// statusCounter counts the injected statuses the gateway actually saw on the wire.
type statusCounter struct {
	base   http.RoundTripper
	mu     sync.Mutex
	counts map[int]int
}

func (c *statusCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err == nil {
		c.mu.Lock()
		c.counts[resp.StatusCode]++
		c.mu.Unlock()
	}
	return resp, err
}

func withFaults(f emulator.Faults) envOpt {
	return func(o *emulator.Options, _ *Config) { o.Faults = f }
}

// TestRetryingCallerCompletesUnderFaults: with 20% 5xx and 10% 409 (seeded), a caller that
// retries exactly when Retryable says so completes every gateway operation.
func TestRetryingCallerCompletesUnderFaults(t *testing.T) {
	sc := &statusCounter{base: http.DefaultTransport, counts: map[int]int{}}
	e := newEnv(t, withFaults(emulator.Faults{Fail5xxRate: 0.2, Fail409Rate: 0.1, Seed: 42}),
		func(_ *emulator.Options, c *Config) { c.HTTPClient = &http.Client{Transport: sc} })
	ctx := testCtx(t)
	stats := map[error]int{}
	step := func(name string, fn func() error) {
		t.Helper()
		if err := retry(ctx, stats, fn); err != nil {
			t.Fatalf("%s did not complete: %v", name, err)
		}
	}
	var vol Volume
	step("ensure volume", func() (err error) { vol, err = e.g.EnsureVolume(ctx, "tb-vol-faulty"); return })
	var snap Snapshot
	step("create snapshot", func() error {
		s, err := e.g.CreateSnapshot(ctx, CreateSnapshotParams{Name: "tb-faulty-snap", ImageName: "ubuntu:22.04"})
		if errors.Is(err, ErrConflict) {
			// A 5xx can hide a create that happened (lost response): the name exists now.
			s, err = e.g.GetSnapshot(ctx, "tb-faulty-snap")
		}
		snap = s
		return err
	})
	step("wait snapshot", func() (err error) { _, err = e.g.WaitSnapshotActive(ctx, snap.ID, nil); return })
	for round := range 3 {
		p := CreateSandboxParams{
			Name:     SandboxName("agent", fmt.Sprintf("faulty-%d", round), 1),
			Labels:   Labels("agent", "u-faulty", fmt.Sprintf("faulty-%d", round)),
			Volumes:  []VolumeMount{{VolumeID: vol.ID, MountPath: volMount}},
			Snapshot: snap.Name,
		}
		var sb Sandbox
		step("find-or-create", func() (err error) { sb, err = e.g.FindOrCreateSandbox(ctx, p); return })
		tb := e.g.Toolbox(sb.ID, sb.ToolboxURL)
		step("exec", func() error {
			res, err := tb.Exec(ctx, ExecRequest{Command: "echo ok"})
			if err == nil && strings.TrimSpace(res.Output) != "ok" {
				return fmt.Errorf("bad output %q", res.Output)
			}
			return err
		})
		path := fmt.Sprintf("%s/r%d.txt", volMount, round)
		step("upload", func() error { return tb.Upload(ctx, path, strings.NewReader("round")) })
		step("download", func() error {
			rc, err := tb.Download(ctx, path, 0, -1)
			if err != nil {
				return err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err == nil && string(b) != "round" {
				return fmt.Errorf("bad content %q", b)
			}
			return err
		})
		step("batch", func() error {
			out, err := tb.UploadBatch(ctx, []UploadItem{{Path: "/home/daytona/b1", Body: strings.NewReader("1")}})
			if err == nil && out[0].Err != nil {
				return out[0].Err
			}
			return err
		})
		step("list files", func() (err error) { _, err = tb.List(ctx, volMount); return })
		step("stop", func() error { return e.g.StopSandbox(ctx, sb.ID) })
		step("start", func() (err error) { _, err = e.g.StartSandbox(ctx, sb.ID); return })
		step("refresh", func() error { return e.g.RefreshActivity(ctx, sb.ID) })
		if round == 0 {
			step("snapshot sandbox", func() (err error) { _, err = e.g.SnapshotSandbox(ctx, sb.ID, "tb-faulty-from-sb"); return })
		}
		step("delete", func() error { return e.g.DeleteSandbox(ctx, sb.ID) })
	}
	var left []Sandbox
	step("list", func() (err error) {
		left, err = e.g.ListSandboxes(ctx, map[string]string{LabelUser: "u-faulty"})
		return
	})
	if len(left) != 0 {
		t.Fatalf("sandboxes left behind: %+v", left)
	}
	step("deactivate", func() error { return e.g.DeactivateSnapshot(ctx, snap.ID) })
	step("remove snapshot", func() error { return e.g.RemoveSnapshot(ctx, snap.ID) })
	sc.mu.Lock()
	defer sc.mu.Unlock()
	t.Logf("caller retries: unavailable %d, conflict %d; on the wire: 500 %d, 503 %d, 409 %d (409s during transitions are absorbed by the gateway's waits)",
		stats[ErrUnavailable], stats[ErrConflict], sc.counts[500], sc.counts[503], sc.counts[409])
	if stats[ErrUnavailable] == 0 || sc.counts[409] == 0 || sc.counts[500]+sc.counts[503] == 0 {
		t.Fatalf("faults were not exercised: %v %v", stats, sc.counts)
	}
}

// TestFaultsSurfaceAsTypedErrors: without retries, injected faults reach the caller as
// typed, retryable errors — never as untyped or string-only errors.
func TestFaultsSurfaceAsTypedErrors(t *testing.T) {
	e := newEnv(t, withFaults(emulator.Faults{Fail5xxRate: 0.2, Fail409Rate: 0.1, Seed: 7}))
	ctx := testCtx(t)
	kinds := map[error]int{}
	for i := range 60 {
		name := fmt.Sprintf("tb-agent-typed-%d", i%3)
		var err error
		switch i % 3 {
		case 0:
			_, err = e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: name})
		case 1:
			err = e.g.StopSandbox(ctx, name)
		case 2:
			_, err = e.g.StartSandbox(ctx, name)
		}
		if err == nil || errors.Is(err, ErrNotFound) {
			continue
		}
		var ge *Error
		if !errors.As(err, &ge) {
			t.Fatalf("untyped error: %T %v", err, err)
		}
		switch {
		case errors.Is(err, ErrUnavailable):
			if ge.Status != 500 && ge.Status != 503 {
				t.Fatalf("unavailable with status %d", ge.Status)
			}
			kinds[ErrUnavailable]++
		case errors.Is(err, ErrConflict):
			kinds[ErrConflict]++
		default:
			t.Fatalf("unexpected error kind: %v", err)
		}
		if !Retryable(err) {
			t.Fatalf("fault not retryable: %v", err)
		}
	}
	if kinds[ErrUnavailable] == 0 || kinds[ErrConflict] == 0 {
		t.Fatalf("expected both 5xx and 409 to surface, got %v", kinds)
	}
}

func TestRateLimitedWithRetryAfter(t *testing.T) {
	e := newEnv(t, withFaults(emulator.Faults{Fail429Rate: 1, Seed: 1}))
	ctx := testCtx(t)
	_, err := e.g.GetSandbox(ctx, "anything")
	rl := wantKind(t, err, ErrRateLimited, "429")
	if rl.Status != 429 || RetryAfter(err) != time.Second || !Retryable(err) {
		t.Fatalf("rate limit: %+v retry-after %v", rl, RetryAfter(err))
	}
	_, err = e.g.Toolbox("x", e.hs.URL+"/toolbox/x").Exec(ctx, ExecRequest{Command: "true"})
	if RetryAfter(wantKind(t, err, ErrRateLimited, "toolbox 429")) != time.Second {
		t.Fatal("toolbox Retry-After not parsed")
	}
}
