package emulator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statuses sends n identical requests straight to the handler.
func statuses(t *testing.T, s *Server, method, path string, n int) ([]int, []http.Header) {
	t.Helper()
	out := make([]int, n)
	hdrs := make([]http.Header, n)
	h := s.Handler()
	for i := range n {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		out[i], hdrs[i] = rec.Code, rec.Header()
	}
	return out, hdrs
}

func newFaultServer(t *testing.T, f Faults) *Server {
	t.Helper()
	s, err := New(context.Background(), Options{Faults: f, Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestFaultsReproducible(t *testing.T) {
	t.Parallel()
	f := Faults{Fail5xxRate: 0.2, Fail429Rate: 0.2, Fail409Rate: 0.2, Seed: 42}
	a, _ := statuses(t, newFaultServer(t, f), http.MethodPost, "/api/sandbox/x/stop", 300)
	b, _ := statuses(t, newFaultServer(t, f), http.MethodPost, "/api/sandbox/x/stop", 300)
	assert.Equal(t, a, b, "same seed, same sequence")
	f.Seed = 43
	c, _ := statuses(t, newFaultServer(t, f), http.MethodPost, "/api/sandbox/x/stop", 300)
	assert.NotEqual(t, a, c, "another seed, another sequence")
}

func TestFaultsRates(t *testing.T) {
	t.Parallel()
	const n = 4000
	s := newFaultServer(t, Faults{Fail5xxRate: 0.1, Fail429Rate: 0.15, Fail409Rate: 0.2, Seed: 7})
	codes, hdrs := statuses(t, s, http.MethodPost, "/api/sandbox/nope/start", n)
	count := map[string]int{}
	for i, c := range codes {
		switch {
		case c >= 500:
			count["5xx"]++
		case c == http.StatusTooManyRequests:
			count["429"]++
			assert.Equal(t, "1", hdrs[i].Get("Retry-After"))
		case c == http.StatusConflict:
			count["409"]++
		case c == http.StatusNotFound:
			count["pass"]++
		default:
			t.Fatalf("unexpected status %d", c)
		}
	}
	near := func(name string, want float64) {
		got := float64(count[name]) / n
		assert.InDelta(t, want, got, want*0.25, "%s rate %.3f, want ~%.2f", name, got, want)
	}
	near("5xx", 0.1)
	near("429", 0.15)
	near("409", 0.2)
	near("pass", 0.55)

	// 409 only on lifecycle calls.
	codes, _ = statuses(t, s, http.MethodGet, "/api/volumes", 500)
	for _, c := range codes {
		assert.NotEqual(t, http.StatusConflict, c)
	}
	// /health is never faulted.
	codes, _ = statuses(t, s, http.MethodGet, "/health", 200)
	for _, c := range codes {
		assert.Equal(t, http.StatusOK, c)
	}
}

func TestFaultsLatencyAndSlowCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Faults: Faults{Latency: 80 * time.Millisecond, SlowCreate: 300 * time.Millisecond, Seed: 1}})
	start := time.Now()
	_, _, err := e.api.VolumesAPI.ListVolumes(e.ctx).Execute()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)
	start = time.Now()
	e.create(apiclient.CreateSandbox{})
	assert.GreaterOrEqual(t, time.Since(start), 380*time.Millisecond, "latency + slow create")
}

func TestFaultsFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"EMULATOR_LATENCY":       "25ms",
		"EMULATOR_FAIL_5XX_RATE": "0.1",
		"EMULATOR_FAIL_429_RATE": "0.05",
		"EMULATOR_FAIL_409_RATE": "0.2",
		"EMULATOR_SLOW_CREATE":   "2s",
		"EMULATOR_SEED":          "99",

		"EMULATOR_SANDBOX_ERROR_RATE":        "0.01",
		"EMULATOR_SANDBOX_ERROR_RECOVERABLE": "0.5",
	}
	f, err := FaultsFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, Faults{Latency: 25 * time.Millisecond, Fail5xxRate: 0.1, Fail429Rate: 0.05, Fail409Rate: 0.2, SlowCreate: 2 * time.Second, Seed: 99,
		SandboxErrorRate: 0.01, SandboxErrorRecoverable: 0.5}, f)

	f, err = FaultsFromEnv(func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, Faults{}, f)

	wantEnvErrors(t, func(getenv func(string) string) error { _, err := FaultsFromEnv(getenv); return err },
		map[string]string{"EMULATOR_LATENCY": "fast", "EMULATOR_FAIL_5XX_RATE": "1.5", "EMULATOR_FAIL_429_RATE": "x", "EMULATOR_SEED": "-1"})
}

// wantEnvErrors asserts that read refuses each of these settings, given alone.
func wantEnvErrors(t *testing.T, read func(getenv func(string) string) error, bad map[string]string) {
	t.Helper()
	for k, v := range bad {
		err := read(func(name string) string {
			if name == k {
				return v
			}
			return ""
		})
		assert.Error(t, err, "%s=%s", k, v)
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"EMULATOR_LATENCY":             "5ms",
		"EMULATOR_CPU_LIMIT":           "10",
		"EMULATOR_MEMORY_LIMIT":        "12",
		"EMULATOR_DISK_LIMIT":          "30",
		"EMULATOR_VOLUME_LIMIT":        "-1",
		"EMULATOR_SUSPENDED":           "Depleted credits",
		"EMULATOR_RESTORE_DELAY":       "2m",
		"EMULATOR_SNAPSHOT_IDLE_LIMIT": "1h",
	}
	o, err := OptionsFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, Options{
		Faults:            Faults{Latency: 5 * time.Millisecond},
		Limits:            Limits{CPU: 10, MemoryGiB: 12, DiskGiB: 30, Volumes: -1, Suspended: true, SuspensionReason: "Depleted credits"},
		RestoreDelay:      2 * time.Minute,
		SnapshotIdleLimit: time.Hour,
	}, o)

	env = map[string]string{"EMULATOR_SUSPENDED": "true"}
	o, err = OptionsFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, Limits{Suspended: true}, o.Limits)

	wantEnvErrors(t, func(getenv func(string) string) error { _, err := OptionsFromEnv(getenv); return err },
		map[string]string{"EMULATOR_CPU_LIMIT": "lots", "EMULATOR_RESTORE_DELAY": "-1s", "EMULATOR_SANDBOX_ERROR_RATE": "2"})
}
