package testenv

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recorder catches the validator's Errorf instead of failing the test.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// fake answers every request with the status, headers and body it is given.
type fake struct {
	status int
	header map[string]string
	body   string
}

// exchange sends one request through a validator to a server answering a,
// and returns what the validator reported.
func exchange(t *testing.T, method, path, contentType, reqBody string, a fake) []string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.body != "" && w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	defer srv.Close()
	rec := &recorder{TB: t}
	client := &http.Client{Transport: NewAPIValidator(rec, http.DefaultTransport)}
	var body io.Reader
	if reqBody != "" {
		body = strings.NewReader(reqBody)
	}
	req, err := http.NewRequest(method, srv.URL+path, body)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer k")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, a.body, string(got), "the validator must hand the body on unchanged")
	resp.Body.Close()
	return rec.msgs
}

const thread = `{"thread_id":"t1","state":"running","sandbox_id":%s,"snapshot":null,"generation":1,
"last_activity_at":null,"auto_stop_at":null,"auto_delete_at":null,
"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}`

// Each case is an exchange the validator must accept or must report; a
// validator that let everything through fails every "reported" case.
func TestAPIValidator(t *testing.T) {
	errBody := func(code string) string { return `{"error":{"code":"` + code + `","message":"m"}}` }
	cases := []struct {
		name                      string
		method, path, ct, reqBody string
		answer                    fake
		wantProblem               string // "" when the exchange is valid
	}{
		{"valid body", "GET", "/v1/whoami", "", "", fake{200, nil, `{"user_id":"a","admin":false}`}, ""},
		{"wrong field type", "GET", "/v1/whoami", "", "", fake{200, nil, `{"user_id":"a","admin":"yes"}`}, "does not match"},
		{"undocumented field", "GET", "/v1/whoami", "", "", fake{200, nil, `{"user_id":"a","admin":true,"extra":1}`}, "does not match"},
		{"3.1 nullable accepts null", "GET", "/v1/threads/t1", "", "", fake{200, nil, fmt.Sprintf(thread, "null")}, ""},
		{"3.1 nullable accepts string", "GET", "/v1/threads/t1", "", "", fake{200, nil, fmt.Sprintf(thread, `"sb-1"`)}, ""},
		{"3.1 type array enforced", "GET", "/v1/threads/t1", "", "", fake{200, nil, fmt.Sprintf(thread, "5")}, "does not match"},
		{"undocumented status", "GET", "/v1/threads/t1", "", "", fake{418, nil, errBody("teapot")}, "status 418 is not documented"},
		{"undocumented error code", "GET", "/v1/threads/t1", "", "", fake{404, nil, errBody("gone_fishing")}, `error code "gone_fishing" is not documented`},
		{"documented error", "GET", "/v1/threads/t1", "", "", fake{404, nil, errBody("not_found")}, ""},
		{"error body shape", "GET", "/v1/threads/t1", "", "", fake{404, nil, `{"message":"no"}`}, "does not match"},
		{"invalid request refused", "POST", "/v1/threads/t1/exec", "application/json", `{}`, fake{400, nil, errBody("missing_command")}, ""},
		{"invalid request accepted", "POST", "/v1/threads/t1/exec", "application/json", `{}`,
			fake{200, nil, `{"exit_code":0,"output":"","truncated":false,"timed_out":false}`}, "the request violates the document"},
		{"retry-after required", "POST", "/v1/threads/t1/exec", "application/json", `{"command":"true"}`, fake{429, nil, errBody("rate_limited")}, `"Retry-After" missing`},
		{"retry-after present", "POST", "/v1/threads/t1/exec", "application/json", `{"command":"true"}`,
			fake{429, map[string]string{"Retry-After": "5"}, errBody("rate_limited")}, ""},
		{"file bytes marked by Accept-Ranges", "GET", "/v1/files?path=a.json", "", "",
			fake{200, map[string]string{"Accept-Ranges": "bytes", "Content-Type": "application/json"}, `{"any":"json"}`}, ""},
		{"listing checked without Accept-Ranges", "GET", "/v1/files?path=a", "", "", fake{200, nil, `{"any":"json"}`}, "does not match"},
		{"unknown route refused", "GET", "/v1/nope", "", "", fake{404, nil, errBody("not_found")}, ""},
		{"unknown route served", "GET", "/v1/nope", "", "", fake{200, nil, `{}`}, "describes no GET /v1/nope"},
		{"wrong method refused", "PATCH", "/v1/whoami", "", "", fake{405, nil, errBody("method_not_allowed")}, ""},
		{"WebDAV passes", "PROPFIND", "/dav/", "", "", fake{207, map[string]string{"Content-Type": "application/xml"}, "<x/>"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs := exchange(t, c.method, c.path, c.ct, c.reqBody, c.answer)
			if c.wantProblem == "" {
				require.Empty(t, msgs)
				return
			}
			require.NotEmpty(t, msgs, "the validator let a violation through")
			require.Contains(t, strings.Join(msgs, "\n"), c.wantProblem)
		})
	}
}

// A streamed (chunked) request body reaches the server as a stream: the
// validator must not turn it into a sized body, or tests of chunked uploads
// would test something else.
func TestAPIValidatorKeepsStreamedBodies(t *testing.T) {
	var gotLength int64
	var gotTE []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotLength, gotTE = r.ContentLength, r.TransferEncoding
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{"path":"a","size":3}`)
	}))
	defer srv.Close()
	rec := &recorder{TB: t}
	client := &http.Client{Transport: NewAPIValidator(rec, http.DefaultTransport)}
	req, err := http.NewRequest("PUT", srv.URL+"/v1/files?path=a", io.NopCloser(strings.NewReader("abc")))
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, int64(-1), gotLength)
	require.Equal(t, []string{"chunked"}, gotTE)
	require.Empty(t, rec.msgs)
}

// An answer produced over time (NDJSON, server-sent events) is handed on as it
// arrives: a test can read its first line while the server still writes, and
// its media type must still be one the document lists.
func TestAPIValidatorPassesStreamsThrough(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "{\"line\":1}\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "{\"line\":2}\n")
	}))
	defer srv.Close()
	defer close(release)
	rec := &recorder{TB: t}
	// The timeout turns a validator that waits for the whole stream into a
	// failure, not a hang.
	client := &http.Client{Timeout: 10 * time.Second, Transport: NewAPIValidator(rec, http.DefaultTransport)}
	req, err := http.NewRequest("GET", srv.URL+"/v1/threads/t1", nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err, "the validator waited for the whole stream")
	defer resp.Body.Close()
	line := make([]byte, len("{\"line\":1}\n"))
	_, err = io.ReadFull(resp.Body, line)
	require.NoError(t, err)
	require.Equal(t, "{\"line\":1}\n", string(line))
	require.Len(t, rec.msgs, 1)
	require.Contains(t, rec.msgs[0], `streamed media type "application/x-ndjson" is not documented for status 200`)
}
