package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/deploycheck"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/metrics"
)

// TestDashboardAndAlertMetricsAreExported runs `threadbox serve` and
// `threadbox worker` as the deployment does (in-process, on free ports,
// against PostgreSQL, a Temporal dev server and the emulator), makes them do
// real work (a thread is created, a workflow task fails), scrapes both
// /metrics endpoints and fails when a metric the Grafana dashboard or an
// alert rule uses is exported by neither. Names defined for code others are
// writing (metrics.Pending) may be missing, and are printed; once one is
// exported it must leave that list.
func TestDashboardAndAlertMetricsAreExported(t *testing.T) {
	used, err := deploycheck.UsedMetrics(testenv.RepoRoot(t))
	require.NoError(t, err)

	pool, dbURL := testenv.Database(t)
	tc, temporalAddr := testenv.Temporal(t)
	emu, err := emulator.New(context.Background(), emulator.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	emuSrv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { emuSrv.Close(); _ = emu.Close() })

	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	taskQueue := "metrics-" + strings.ReplaceAll(t.Name(), "/", "-")
	for k, v := range map[string]string{
		"DATABASE_URL":                  dbURL,
		"HTTP_ADDR":                     httpAddr,
		"THREADBOX_WORKER_METRICS_ADDR": metricsAddr,
		"TEMPORAL_ADDRESS":              temporalAddr,
		"TEMPORAL_TASK_QUEUE":           taskQueue,
		"DAYTONA_API_URL":               emuSrv.URL + "/api",
		"THREADBOX_UPLOAD_DIR":          t.TempDir(),
		"LOG_LEVEL":                     "error",
	} {
		t.Setenv(k, v)
	}
	for _, command := range []string{"serve", "worker"} {
		ctx, cancel := context.WithCancel(context.Background())
		cmd := newRootCommand()
		cmd.SetArgs([]string{command})
		done := make(chan error, 1)
		go func() { done <- cmd.ExecuteContext(ctx) }()
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err, "%s stops cleanly", command)
			case <-time.After(45 * time.Second):
				t.Errorf("%s did not stop", command)
			}
		})
	}
	serveURL, workerURL := "http://"+httpAddr, "http://"+metricsAddr
	testenv.Eventually(t, 60*time.Second, "serve ready", func() bool { return status(serveURL+"/readyz", "") == http.StatusOK })
	testenv.Eventually(t, 60*time.Second, "worker metrics", func() bool { return status(workerURL+"/healthz", "") == http.StatusOK })

	// Real work: a thread (a workflow, Daytona calls, ledger rows, a sandbox
	// row), an activity that fails (Daytona gone) and a workflow task that
	// fails (a type no worker knows).
	key, _, err := auth.NewStore(db.New(pool)).Create(context.Background(), "metrics-user", false)
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPost, serveURL+"/v1/threads", strings.NewReader(`{"thread_id":"t1"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	api := testenv.APIClient(t) // exchanges checked against the OpenAPI document
	resp, err := api.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	// Daytona goes away, and the thread's delete activity fails.
	emuSrv.Close()
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	req, _ = http.NewRequestWithContext(dctx, http.MethodDelete, serveURL+"/v1/threads/t1", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := api.Do(req); err == nil {
		resp.Body.Close() // the API waits for the sandbox to go; the client need not
	}
	run, err := tc.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: "metrics-broken", TaskQueue: taskQueue}, "threadbox-no-such-workflow")
	require.NoError(t, err)
	t.Cleanup(func() { _ = tc.TerminateWorkflow(context.Background(), run.GetID(), "", "test over") })

	var exported map[string]bool
	missing := func() []string {
		exported = map[string]bool{}
		for _, u := range []string{serveURL, workerURL} {
			for name := range scrape(t, u+"/metrics") {
				exported[name] = true
			}
		}
		var out []string
		for name := range used {
			if _, ok := deploycheck.Family(name, exported); !ok && !slices.Contains(metrics.Pending(), name) && !slices.Contains(metrics.Pending(), familyOfPending(name)) {
				out = append(out, name)
			}
		}
		slices.Sort(out)
		return out
	}
	// Some series appear only once the work above has happened (a ledger
	// row, a failed task): scrape until they do, or report what is missing.
	last := missing()
	for deadline := time.Now().Add(60 * time.Second); len(last) > 0 && time.Now().Before(deadline); last = missing() {
		time.Sleep(500 * time.Millisecond)
	}
	for _, name := range last {
		t.Errorf("%s is used by %v but exported by neither serve nor worker", name, used[name])
	}
	for _, p := range metrics.Pending() {
		if exported[p] {
			t.Errorf("%s is exported now: remove it from metrics.Pending", p)
		} else {
			t.Logf("pending (defined in metrics/names.go, not exported yet): %s, used by %v", p, usedBy(used, p))
		}
	}
}

// familyOfPending maps a histogram series of a pending metric to its name.
func familyOfPending(series string) string {
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(series, suffix); ok {
			return base
		}
	}
	return series
}

func usedBy(used map[string][]string, family string) []string {
	var out []string
	for name, where := range used {
		if familyOfPending(name) == family {
			out = append(out, where...)
		}
	}
	slices.Sort(out)
	return out
}

func status(url, key string) int {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// scrape reads a /metrics page in the Prometheus text format.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	out := map[string]bool{}
	for name := range mfs {
		out[name] = true
	}
	return out
}
