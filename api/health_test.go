package api_test

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/testenv"
)

// /readyz needs no key: a burst of probes must not become a burst of calls on
// Daytona (and PostgreSQL, Temporal). One answer serves every probe for
// api.ReadyCacheTTL; after it, the next probe checks again.
func TestReadinessIsCachedBriefly(t *testing.T) {
	pool, _ := testenv.Database(t)
	_, gw, _, calls := testenv.Emulator(t, emulator.Faults{}, nil)
	cfg, err := config.Load("", func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.UploadDir = t.TempDir()
	clock := testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	srv, err := api.New(api.Deps{Config: cfg, Pool: pool, Daytona: gw, Now: clock.Now})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	const health = "GET /api/health"
	calls.Reset()

	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := do(t, "GET", ts.URL+"/readyz", "", nil)
			require.Equal(t, 200, resp.StatusCode, string(body))
			require.Contains(t, string(body), `"daytona":"ok"`)
		}()
	}
	wg.Wait()
	require.Equal(t, 1, calls.Count(health), "20 probes within the cache's life ask Daytona once")

	clock.Add(api.ReadyCacheTTL - time.Millisecond)
	do(t, "GET", ts.URL+"/readyz", "", nil)
	require.Equal(t, 1, calls.Count(health), "still within the cache's life")

	clock.Add(time.Millisecond)
	resp, body := do(t, "GET", ts.URL+"/readyz", "", nil)
	require.Equal(t, 200, resp.StatusCode, string(body))
	require.Equal(t, 2, calls.Count(health), "an expired answer is checked again")
}
