package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

// A page on another site that posts a form to the API (no preflight needed,
// and a browser would attach Basic credentials it cached for /dav/) is
// refused with 403 before anything runs; API and WebDAV clients, which send
// no Origin, and same-origin pages keep working.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	pool, _ := testenv.Database(t)
	ts := replica(t, pool, nil)
	key, _, err := auth.NewStore(db.New(pool)).Create(context.Background(), "alice", false)
	require.NoError(t, err)
	u, _ := url.Parse(ts.URL)
	form := "thread_id=evil"
	formHdr := func(extra map[string]string) map[string]string {
		h := map[string]string{"Authorization": "Basic " + basic("alice", key), "Content-Type": "application/x-www-form-urlencoded"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}

	// A modern browser says where the request comes from...
	resp, body := send(t, "POST", ts.URL+"/v1/threads", formHdr(map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}), strings.NewReader(form))
	requireError(t, resp, body, http.StatusForbidden, "cross_origin_request")
	resp, body = send(t, "POST", ts.URL+"/v1/threads", formHdr(map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://sub." + u.Hostname()}), strings.NewReader(form))
	requireError(t, resp, body, http.StatusForbidden, "cross_origin_request")
	// ...an older one only sends Origin.
	resp, body = send(t, "POST", ts.URL+"/v1/threads", formHdr(map[string]string{"Origin": "https://evil.example"}), strings.NewReader(form))
	requireError(t, resp, body, http.StatusForbidden, "cross_origin_request")
	// WebDAV methods are state-changing too.
	resp, body = send(t, "MKCOL", ts.URL+"/dav/x", formHdr(map[string]string{"Sec-Fetch-Site": "cross-site"}), nil)
	requireError(t, resp, body, http.StatusForbidden, "cross_origin_request")
	resp, body = send(t, "DELETE", ts.URL+"/v1/admin/keys/00000000-0000-0000-0000-000000000000", formHdr(map[string]string{"Origin": "null"}), nil)
	requireError(t, resp, body, http.StatusForbidden, "cross_origin_request")

	// Reads are not state-changing (and cannot be read cross-origin without CORS).
	resp, _ = send(t, "GET", ts.URL+"/v1/whoami", formHdr(map[string]string{"Sec-Fetch-Site": "cross-site"}), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Same origin, a user typing a URL, and clients without browser headers
	// pass the check (and then fail or succeed on their own merits).
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "same-origin", "Origin": ts.URL},
		{"Sec-Fetch-Site": "none"},
		{"Origin": ts.URL},
		{},
	} {
		resp, body = send(t, "POST", ts.URL+"/v1/admin/keys", formHdr(h), strings.NewReader(form))
		requireError(t, resp, body, http.StatusForbidden, "forbidden") // a user key on an admin route
	}
	// WebDAV's OPTIONS (no Origin) is the engine's, with its DAV header.
	resp, _ = send(t, "OPTIONS", ts.URL+"/dav/", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "1, 2", resp.Header.Get("DAV"))
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
}

// The origins of THREADBOX_CORS_ORIGINS get CORS answers (preflights without
// credentials) and may change state; other origins get neither.
func TestCORSAllowsConfiguredOrigins(t *testing.T) {
	pool, _ := testenv.Database(t)
	ui := "https://ui.example.com"
	ts := replica(t, pool, func(c *config.Config) { c.CORSOrigins = []string{ui} })
	adminKey, _, err := auth.NewStore(db.New(pool)).Create(context.Background(), "root", true)
	require.NoError(t, err)

	// A preflight is the browser's question about CORS, answered before any
	// route: it is no operation of the API, so it bypasses the OpenAPI
	// validator of send.
	preflight := func(origin, method string) *http.Response {
		req, err := http.NewRequest("OPTIONS", ts.URL+"/v1/admin/keys", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := preflight(ui, "POST")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, ui, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	require.Contains(t, strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization")
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"), "keys travel in Authorization, never as cookies")
	resp = preflight("https://evil.example", "POST")
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	hdr := map[string]string{"Authorization": "Bearer " + adminKey, "Content-Type": "application/json",
		"Origin": ui, "Sec-Fetch-Site": "cross-site"}
	resp, body := send(t, "POST", ts.URL+"/v1/admin/keys", hdr, strings.NewReader(`{"user_id":"alice"}`))
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	require.Equal(t, ui, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After")

	hdr["Origin"] = "https://evil.example"
	resp, body = send(t, "POST", ts.URL+"/v1/admin/keys", hdr, strings.NewReader(`{"user_id":"alice"}`))
	requireError(t, resp, body, http.StatusForbidden, "cross_origin_request")
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}

// A burst past the key's rate limit gets 429 rate_limited with Retry-After;
// another key is not affected.
func TestRateLimitPerKey(t *testing.T) {
	pool, _ := testenv.Database(t)
	ts := replica(t, pool, func(c *config.Config) { c.RateLimit, c.RateBurst = 2, 5 })
	store := auth.NewStore(db.New(pool))
	alice, _, err := store.Create(context.Background(), "alice", false)
	require.NoError(t, err)
	bob, _, err := store.Create(context.Background(), "bob", false)
	require.NoError(t, err)

	for range 5 {
		resp, body := do(t, "GET", ts.URL+"/v1/whoami", alice, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	}
	resp, body := do(t, "GET", ts.URL+"/v1/whoami", alice, nil)
	requireError(t, resp, body, http.StatusTooManyRequests, "rate_limited")
	require.Equal(t, "1", resp.Header.Get("Retry-After"), "a token every 500 ms, rounded up to whole seconds")
	resp, _ = do(t, "GET", ts.URL+"/v1/whoami", bob, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, body = do(t, "GET", ts.URL+"/metrics", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `threadbox_admission_refused_total{limit="rate_limited"} 1`)
	require.Contains(t, string(body), `threadbox_admission_limit{limit="rate_limited"} 2`)
	require.Contains(t, string(body), `threadbox_admission_limit{limit="sandbox_limit"} 5`)
	require.Contains(t, string(body), `threadbox_admission_usage{limit="total_sandbox_limit"} 0`)
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
