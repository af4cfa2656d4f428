package testenv

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/entity"
)

// Emulator starts an in-process Daytona emulator on loopback and returns it
// with the gateway threadbox would use against it. Every request is counted
// by route (Calls), so tests can assert how many toolbox calls a request of
// theirs cost.
func Emulator(t testing.TB, faults emulator.Faults, log *slog.Logger) (*emulator.Server, *daytona.Gateway, string, *Calls) {
	t.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	emu, err := emulator.New(context.Background(), emulator.Options{
		Faults:       faults,
		CronInterval: 100 * time.Millisecond,
		Logger:       log.With("component", "emulator"),
	})
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	calls := &Calls{}
	srv := httptest.NewServer(calls.wrap(emu.Handler()))
	t.Cleanup(func() { srv.Close(); _ = emu.Close() })
	gw, err := daytona.New(daytona.Config{APIURL: srv.URL + "/api", APIKey: "test-key", Logger: log})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	return emu, gw, srv.URL, calls
}

// Calls counts the requests an emulator served, by method and the route's
// last path segment ("GET files/info", "GET files", "POST process/execute"),
// and lets a test put faults in front of the emulator (Intercept).
type Calls struct {
	mu        sync.Mutex
	n         map[string]int
	intercept Interceptor
}

// Interceptor sees every request before the emulator does. It may answer it
// itself (a fault: return true), or pass it on, possibly calling next to
// have the emulator carry it out first (a lost answer: the emulator acts,
// the client gets the fault).
type Interceptor func(w http.ResponseWriter, r *http.Request, next http.Handler) bool

// Intercept puts fn in front of the emulator (nil removes it).
func (c *Calls) Intercept(fn Interceptor) {
	c.mu.Lock()
	c.intercept = fn
	c.mu.Unlock()
}

func (c *Calls) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[r.Method+" "+route(r.URL.Path)]++
		intercept := c.intercept
		c.mu.Unlock()
		if intercept != nil && intercept(w, r, h) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Route is the toolbox route of a request path (/toolbox/{id}/files/info →
// files/info), as Calls counts it.
func Route(p string) string { return route(p) }

// route is the toolbox route of a path (/toolbox/{id}/files/info →
// files/info); other paths are returned as they are.
func route(p string) string {
	if rest, ok := strings.CutPrefix(p, "/toolbox/"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return strings.Trim(rest[i+1:], "/")
		}
	}
	return p
}

// Count is how many "METHOD route" requests were served.
func (c *Calls) Count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// Reset forgets the counts.
func (c *Calls) Reset() {
	c.mu.Lock()
	c.n = nil
	c.mu.Unlock()
}

// Sandbox is one running emulator sandbox with a fresh volume mounted at
// entity.VolumeMountPath, for tests of the file layers (sandboxfs, volume,
// WebDAV, uploads) over Daytona's real toolbox protocol, without Temporal.
type Sandbox struct {
	Emulator *emulator.Server
	Gateway  *daytona.Gateway
	Toolbox  *daytona.Toolbox
	ID       string
	Calls    *Calls
}

// NewSandbox starts an emulator and one sandbox in it.
func NewSandbox(t testing.TB) *Sandbox {
	t.Helper()
	emu, gw, _, calls := Emulator(t, emulator.Faults{}, nil)
	ctx := context.Background()
	vol, err := gw.EnsureVolume(ctx, "tb-vol-test-"+randomHex(4))
	if err != nil {
		t.Fatalf("volume: %v", err)
	}
	sb, err := gw.FindOrCreateSandbox(ctx, daytona.CreateSandboxParams{
		Name:    "tb-test-" + randomHex(4),
		Labels:  map[string]string{"test": t.Name()},
		Volumes: []daytona.VolumeMount{{VolumeID: vol.ID, MountPath: entity.VolumeMountPath}},
	})
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	calls.Reset()
	return &Sandbox{Emulator: emu, Gateway: gw, Toolbox: gw.Toolbox(sb.ID, sb.ToolboxURL), ID: sb.ID, Calls: calls}
}
