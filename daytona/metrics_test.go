package daytona

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/threadbox/threadbox/emulator"
)

// TestDaytonaRoutesAreInTheOpenAPIDocuments checks every route the
// instrumented transport names against the OpenAPI documents shipped in the
// official client modules: same method, same path (parameters as {}).
func TestDaytonaRoutesAreInTheOpenAPIDocuments(t *testing.T) {
	known := map[string]bool{} // "METHOD seg/{}/seg"
	for _, mod := range []string{"github.com/daytonaio/daytona/libs/api-client-go", "github.com/daytonaio/daytona/libs/toolbox-api-client-go"} {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output()
		if err != nil {
			t.Fatalf("locating %s: %v", mod, err)
		}
		doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join(strings.TrimSpace(string(out)), "api", "openapi.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for path, item := range doc.Paths.Map() {
			segs := strings.Split(strings.Trim(path, "/"), "/")
			for i, s := range segs {
				if strings.HasPrefix(s, "{") {
					segs[i] = "{}"
				}
			}
			for method := range item.Operations() {
				known[method+" "+strings.Join(segs, "/")] = true
			}
		}
	}
	for _, rt := range daytonaRoutes() {
		if key := rt.method + " " + strings.Join(rt.tail, "/"); !known[key] {
			t.Errorf("route %s (%s) is in neither OpenAPI document", key, rt.op)
		}
	}
}

// TestEveryGatewayCallIsMeasured runs every operation of the gateway against
// the emulator through the instrumented transport: each route's operation is
// observed and no request falls into "other".
func TestEveryGatewayCallIsMeasured(t *testing.T) {
	reg := prometheus.NewRegistry()
	rt, err := InstrumentTransport(nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(_ *emulator.Options, c *Config) { c.HTTPClient = &http.Client{Transport: rt} })
	ctx := testCtx(t)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("health", e.g.Health(ctx))
	vol, err := e.g.EnsureVolume(ctx, "tb-vol-metrics")
	must("ensure volume", err)
	sb, err := e.g.FindOrCreateSandbox(ctx, CreateSandboxParams{Name: SandboxName("agent", "metrics", 1), Labels: Labels("agent", "u-m", "metrics")})
	must("create", err)
	_, err = e.g.GetSandbox(ctx, sb.ID)
	must("get", err)
	_, err = e.g.ListSandboxes(ctx, map[string]string{LabelUser: "u-m"})
	must("list", err)
	must("autostop", e.g.SetAutoStop(ctx, sb.ID, 30))
	must("autodelete", e.g.SetAutoDelete(ctx, sb.ID, 60))
	must("refresh", e.g.RefreshActivity(ctx, sb.ID))
	tb := e.g.Toolbox(sb.ID, sb.ToolboxURL)
	_, err = tb.Exec(ctx, ExecRequest{Command: "true"})
	must("exec", err)
	must("mkdir", tb.Mkdir(ctx, "/home/daytona/m"))
	must("upload", tb.Upload(ctx, "/home/daytona/m/a.txt", strings.NewReader("a")))
	_, err = tb.UploadBatch(ctx, []UploadItem{{Path: "/home/daytona/m/b.txt", Body: strings.NewReader("b")}})
	must("upload batch", err)
	_, err = tb.List(ctx, "/home/daytona/m")
	must("list files", err)
	_, err = tb.Stat(ctx, "/home/daytona/m/a.txt")
	must("stat", err)
	rc, err := tb.Download(ctx, "/home/daytona/m/a.txt", 0, -1)
	must("download", err)
	rc.Close()
	must("move", tb.Move(ctx, "/home/daytona/m/a.txt", "/home/daytona/m/c.txt"))
	must("delete file", tb.Delete(ctx, "/home/daytona/m", true))
	snap, err := e.g.SnapshotSandbox(ctx, sb.ID, "tb-metrics-from-sb")
	must("snapshot sandbox", err)
	_, err = e.g.CreateSnapshot(ctx, CreateSnapshotParams{Name: "tb-metrics-img", ImageName: "python:3.12-slim"})
	must("create snapshot", err)
	_, err = e.g.GetSnapshot(ctx, snap.ID)
	must("get snapshot", err)
	_, err = e.g.ActivateSnapshot(ctx, snap.ID) // activating an active snapshot succeeds
	must("activate", err)
	must("deactivate", e.g.DeactivateSnapshot(ctx, snap.ID))
	must("remove snapshot", e.g.RemoveSnapshot(ctx, snap.ID))
	must("stop", e.g.StopSandbox(ctx, sb.ID))
	_, err = e.g.StartSandbox(ctx, sb.ID)
	must("start", err)
	must("delete", e.g.DeleteSandbox(ctx, sb.ID))
	must("delete volume", e.g.DeleteVolume(ctx, vol.ID))

	counts := histogramCounts(t, reg)
	for _, r := range daytonaRoutes() {
		if counts[r.op] == 0 {
			t.Errorf("operation %s (%s %s) was never observed", r.op, r.method, strings.Join(r.tail, "/"))
		}
	}
	if counts[opOther] != 0 {
		t.Errorf("%v requests were labelled %q: a route is missing", counts[opOther], opOther)
	}
}

// TestDaytonaErrorsByClass: 5xx, 429 and no answer are counted by class; a
// 404 and a cancelled call are not errors of Daytona.
func TestDaytonaErrorsByClass(t *testing.T) {
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	rt, err := InstrumentTransport(nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	call := func(ctx context.Context, method, url string) error {
		req, _ := http.NewRequestWithContext(ctx, method, url, nil)
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	get := srv.URL + "/api/sandbox/abc"
	for _, s := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusNotFound, http.StatusOK} {
		status = s
		if err := call(context.Background(), http.MethodGet, get); err != nil {
			t.Fatal(err)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := call(cancelled, http.MethodGet, get); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	if err := call(context.Background(), http.MethodPost, dead.URL+"/toolbox/x/process/execute"); err == nil {
		t.Fatal("a closed server answered")
	}

	errs := map[string]float64{}
	for _, mf := range gather(t, reg) {
		if mf.GetName() != MetricRequestErrors {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetCounter().GetValue(); v > 0 {
				errs[label(m, "operation")+"/"+label(m, "class")] = v
			}
		}
	}
	want := map[string]float64{"get_sandbox/server": 1, "get_sandbox/rate_limited": 1, "exec/transport": 1}
	if len(errs) != len(want) {
		t.Fatalf("errors %v, want %v", errs, want)
	}
	for k, v := range want {
		if errs[k] != v {
			t.Fatalf("errors %v, want %v", errs, want)
		}
	}
	if n := histogramCounts(t, reg)["get_sandbox"]; n != 4 {
		t.Fatalf("get_sandbox observed %v times, want the 4 answered calls", n)
	}
}

func gather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// histogramCounts is the observation count of the latency histogram per operation.
func histogramCounts(t *testing.T, reg *prometheus.Registry) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, mf := range gather(t, reg) {
		if mf.GetName() != MetricRequestDuration {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[label(m, "operation")] = m.GetHistogram().GetSampleCount()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
