package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

// proxiedAPI is a second API server over env whose database pool reaches
// PostgreSQL through a proxy the test can cut, and whose connections carry
// an application_name of their own, so pg_terminate_backend can target
// them and nobody else's.
func proxiedAPI(t *testing.T, env *testenv.Env) (*testenv.Env, *testenv.Proxy, *pgxpool.Pool, string) {
	t.Helper()
	u, err := url.Parse(env.DatabaseURL)
	require.NoError(t, err)
	proxy := testenv.NewProxy(t, u.Host)
	proxy.Start()
	u.Host = proxy.Addr
	app := fmt.Sprintf("blip_%d", time.Now().UnixNano())
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	pool, err := db.Connect(context.Background(), u.String())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	srv, err := api.New(api.Deps{Config: env.Config, Pool: pool, Temporal: env.Temporal, Daytona: env.Gateway, Logger: env.Logger})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	copied := *env
	copied.URL = hs.URL
	return &copied, proxy, pool, app
}

// TestDatabaseBlipIsA503NotA500 runs a steady load of exec and thread reads
// while every PostgreSQL backend of the API's pool is terminated over and
// over (pg_terminate_backend: the server ends the session with 57P01, as a
// restart does), then with the network path to PostgreSQL cut (a real
// proxy closed: refused and reset connections). No request may be a 500:
// each is served, or refused 503 database_unavailable with Retry-After; the
// reads' one retry on a fresh connection keeps most of them served. Once the
// path is back, the same server serves again.
func TestDatabaseBlipIsA503NotA500(t *testing.T) {
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Minute, AutoDelete: time.Hour})
	penv, proxy, _, app := proxiedAPI(t, env)
	c := newTC(t, penv, env.UserKey)
	c.create("blip")
	c.exec("blip", "true")

	var served, refused, other atomic.Int64
	var mu sync.Mutex
	var unexpected []string
	load := func(ctx context.Context) {
		for i := 0; ctx.Err() == nil; i++ {
			path, method, body := "/v1/threads/blip", http.MethodGet, any(nil)
			if i%2 == 0 {
				path, method, body = "/v1/threads/blip/exec", http.MethodPost, map[string]any{"command": "true"}
			}
			resp, b := c.call(method, path, body)
			switch {
			case resp.StatusCode == http.StatusOK:
				served.Add(1)
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" && testenv.ErrorCode(b) == "database_unavailable":
				refused.Add(1)
			default:
				other.Add(1)
				mu.Lock()
				unexpected = append(unexpected, fmt.Sprintf("%s %s: %d %s", method, path, resp.StatusCode, b))
				mu.Unlock()
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); load(ctx) }()
	}
	terminated := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		var n int
		require.NoError(t, env.Pool.QueryRow(context.Background(),
			`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n))
		terminated += n
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	t.Logf("terminations: %d backends; requests: %d served, %d refused 503 database_unavailable", terminated, served.Load(), refused.Load())
	require.Positive(t, terminated, "the pool's backends were terminated under load")
	require.Empty(t, unexpected, "every request is served or refused 503 database_unavailable with Retry-After")
	require.Positive(t, served.Load())

	// The path to PostgreSQL is cut: refused, and nothing else.
	proxy.Stop()
	time.Sleep(600 * time.Millisecond) // past the key cache (auth.CacheTTL), so the lookup meets the outage too
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v1/threads/blip", nil},
		{http.MethodPost, "/v1/threads/blip/exec", map[string]any{"command": "true"}},
		{http.MethodGet, "/v1/whoami", nil},
	} {
		resp, b := c.call(req.method, req.path, req.body)
		requireErr(t, resp, b, http.StatusServiceUnavailable, "database_unavailable")
		require.NotEmpty(t, resp.Header.Get("Retry-After"), "%s %s", req.method, req.path)
	}
	// And back, without a restart.
	proxy.Start()
	testenv.Eventually(t, 30*time.Second, "served again", func() bool {
		resp, _ := c.call(http.MethodGet, "/v1/threads/blip", nil)
		return resp.StatusCode == http.StatusOK
	})
	require.Equal(t, 0, c.exec("blip", "true").ExitCode)
}

// TestSandboxProviderOutageIs503 cuts every connection to Daytona (the
// emulator hangs up on each request, as an unreachable control plane or
// toolbox does) under a warm thread: exec answers 503
// sandbox_provider_unavailable with Retry-After, never 500, and serves
// again once Daytona is back.
func TestSandboxProviderOutageIs503(t *testing.T) {
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Minute, AutoDelete: time.Hour})
	c := newTC(t, env, env.UserKey)
	c.create("dayt")
	c.exec("dayt", "true")
	env.Calls.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return true
	})
	resp, b := c.call(http.MethodPost, "/v1/threads/dayt/exec", map[string]any{"command": "true"})
	requireErr(t, resp, b, http.StatusServiceUnavailable, "sandbox_provider_unavailable")
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	env.Calls.Intercept(nil)
	require.Equal(t, 0, c.exec("dayt", "true").ExitCode)
}
