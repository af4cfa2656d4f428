package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

// baseServer is the API over a real database only: enough for auth, errors,
// health and metrics, which need neither Temporal nor Daytona.
func baseServer(t *testing.T) (*httptest.Server, *auth.Store) {
	t.Helper()
	ts, pool := baseServerPool(t)
	return ts, auth.NewStore(db.New(pool))
}

// baseServerPool is baseServer that also returns its database.
func baseServerPool(t *testing.T) (*httptest.Server, *pgxpool.Pool) {
	t.Helper()
	pool, _ := testenv.Database(t)
	return replica(t, pool, nil), pool
}

// replica is one API server over pool, as one of several `serve` replicas
// behind a load balancer would be; configure adjusts the defaults.
func replica(t *testing.T, pool *pgxpool.Pool, configure func(*config.Config)) *httptest.Server {
	t.Helper()
	cfg, err := config.Load("", func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.UploadDir = t.TempDir()
	if configure != nil {
		configure(&cfg)
	}
	srv, err := api.New(api.Deps{Config: cfg, Pool: pool})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return ts
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends one request through a client that checks the exchange against
// the OpenAPI document.
func do(t *testing.T, method, url, key string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	var hdr map[string]string
	if key != "" {
		hdr = map[string]string{"Authorization": "Bearer " + key}
	}
	return send(t, method, url, hdr, body)
}

// send sends a request with the given headers (body may be nil) and
// returns its response and body.
func send(t *testing.T, method, url string, hdr map[string]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := testenv.APIClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func requireError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, string(body))
	require.Equal(t, "application/json", strings.Split(resp.Header.Get("Content-Type"), ";")[0])
	var e apiError
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	require.Equal(t, code, e.Error.Code)
	require.NotEmpty(t, e.Error.Message)
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	ts, _ := baseServer(t)
	resp, body := do(t, "GET", ts.URL+"/healthz", "", nil)
	require.Equal(t, 200, resp.StatusCode)
	require.JSONEq(t, `{"status":"ok"}`, string(body))

	resp, body = do(t, "GET", ts.URL+"/readyz", "", nil)
	require.Equal(t, 200, resp.StatusCode, string(body))
	require.Contains(t, string(body), `"database":"ok"`)

	resp, body = do(t, "GET", ts.URL+"/metrics", "", nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(body), `threadbox_http_requests_total{method="GET",route="/readyz",status="200"} 1`)
	require.Contains(t, string(body), "go_goroutines")
}

func TestAuthentication(t *testing.T) {
	ts, keys := baseServer(t)
	ctx := context.Background()
	userKey, row, err := keys.Create(ctx, "alice", false)
	require.NoError(t, err)
	adminKey, _, err := keys.Create(ctx, "root", true)
	require.NoError(t, err)

	resp, body := do(t, "GET", ts.URL+"/v1/whoami", userKey, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.JSONEq(t, `{"user_id":"alice","admin":false}`, string(body))

	resp, body = do(t, "GET", ts.URL+"/v1/whoami", "", nil)
	requireError(t, resp, body, 401, "unauthorized")
	require.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
	resp, body = do(t, "GET", ts.URL+"/v1/whoami", "tb_unknown", nil)
	requireError(t, resp, body, 401, "unauthorized")

	// The scheme is case-insensitive.
	req0, _ := http.NewRequest("GET", ts.URL+"/v1/whoami", nil)
	req0.Header.Set("Authorization", "bearer "+userKey)
	r0, err := testenv.APIClient(t).Do(req0)
	require.NoError(t, err)
	r0.Body.Close()
	require.Equal(t, 200, r0.StatusCode)

	// HTTP Basic with the key as password (WebDAV clients), any user name.
	req, _ := http.NewRequest("GET", ts.URL+"/v1/whoami", nil)
	req.SetBasicAuth("whoever", userKey)
	r, err := testenv.APIClient(t).Do(req)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, 200, r.StatusCode)

	// Admin routes refuse a user key with 403 and accept an admin key.
	resp, body = do(t, "GET", ts.URL+"/v1/admin/skills", userKey, nil)
	requireError(t, resp, body, 403, "forbidden")
	resp, body = do(t, "GET", ts.URL+"/v1/whoami", adminKey, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.JSONEq(t, `{"user_id":"root","admin":true}`, string(body))

	// A revoked key is refused within auth.CacheTTL (the contract: a second).
	_, err = keys.Revoke(ctx, row.ID)
	require.NoError(t, err)
	time.Sleep(auth.CacheTTL)
	resp, body = do(t, "GET", ts.URL+"/v1/whoami", userKey, nil)
	requireError(t, resp, body, 401, "unauthorized")
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	ts, keys := baseServer(t)
	key, _, err := keys.Create(context.Background(), "alice", false)
	require.NoError(t, err)
	resp, body := do(t, "GET", ts.URL+"/nope", "", nil)
	requireError(t, resp, body, 404, "not_found")
	resp, body = do(t, "GET", ts.URL+"/v1/nope", key, nil)
	requireError(t, resp, body, 404, "not_found")
	resp, body = do(t, "POST", ts.URL+"/healthz", "", nil)
	requireError(t, resp, body, 405, "method_not_allowed")
	// A wrong method on a known authenticated route is 405 too, not 404.
	resp, body = do(t, "PATCH", ts.URL+"/v1/whoami", key, nil)
	requireError(t, resp, body, 405, "method_not_allowed")
	resp, body = do(t, "PATCH", ts.URL+"/v1/whoami", "", nil)
	requireError(t, resp, body, 401, "unauthorized")
	resp, body = do(t, "DELETE", ts.URL+"/v1/admin/snapshots", key, nil)
	requireError(t, resp, body, 403, "forbidden")
}
