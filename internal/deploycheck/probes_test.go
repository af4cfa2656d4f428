package deploycheck

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/metrics"
)

// The probe paths the manifests and compose health checks use.
const (
	ServeReadinessPath = "/readyz"
	ServeLivenessPath  = "/healthz"
	WorkerLivenessPath = "/healthz"
)

// TestProbePathsAreServed: the API server answers its probes (readiness with
// the database only, as a test build without Temporal and Daytona), and the
// worker's metrics listener answers its liveness probe and /metrics.
func TestProbePathsAreServed(t *testing.T) {
	pool, _ := testenv.Database(t)
	cfg, err := config.Load("", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.UploadDir = t.TempDir()
	srv, err := api.New(api.Deps{Config: cfg, Pool: pool, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	for _, p := range []string{ServeReadinessPath, ServeLivenessPath, "/metrics"} {
		if code := get(t, hs.URL+p); code != http.StatusOK {
			t.Errorf("serve GET %s: %d", p, code)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, addr, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("metrics listener: %v", err)
		}
	})
	testenv.Eventually(t, 10*time.Second, "worker metrics listener", func() bool {
		return get(t, "http://"+addr+WorkerLivenessPath) == http.StatusOK
	})
	if code := get(t, "http://"+addr+"/metrics"); code != http.StatusOK {
		t.Errorf("worker GET /metrics: %d", code)
	}
	if code := get(t, "http://"+addr+"/nothing"); code != http.StatusNotFound {
		t.Errorf("worker GET /nothing: %d, want 404 (the check can fail)", code)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
