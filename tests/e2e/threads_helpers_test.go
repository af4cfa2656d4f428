package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/internal/testenv"
)

// tc is a test client of one user against one Env.
type tc struct {
	t   *testing.T
	env *testenv.Env
	key string
}

func newTC(t *testing.T, env *testenv.Env, key string) tc { return tc{t: t, env: env, key: key} }

var httpClient = &http.Client{Timeout: 3 * time.Minute}

// raw sends a request with a given content type and returns status and body,
// through env.HTTP: the exchange is checked against the OpenAPI document.
func (c tc) raw(method, path, contentType string, body io.Reader) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.env.URL+path, body)
	require.NoError(c.t, err)
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.env.HTTP.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp, b
}

// call sends v as JSON (no body when v is nil).
func (c tc) call(method, path string, v any) (*http.Response, []byte) {
	c.t.Helper()
	if v == nil {
		return c.raw(method, path, "", nil)
	}
	b, err := json.Marshal(v)
	require.NoError(c.t, err)
	return c.raw(method, path, "application/json", bytes.NewReader(b))
}

type threadJSON struct {
	ThreadID       string     `json:"thread_id"`
	State          string     `json:"state"`
	SandboxID      *string    `json:"sandbox_id"`
	Generation     int        `json:"generation"`
	LastActivityAt *time.Time `json:"last_activity_at"`
	AutoStopAt     *time.Time `json:"auto_stop_at"`
}

type execJSON struct {
	ExitCode  int    `json:"exit_code"`
	Output    string `json:"output"`
	Truncated bool   `json:"truncated"`
	TimedOut  bool   `json:"timed_out"`
}

type errJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (c tc) create(id string) (int, threadJSON) {
	c.t.Helper()
	resp, body := c.call(http.MethodPost, "/v1/threads", map[string]string{"thread_id": id})
	require.Contains(c.t, []int{200, 201}, resp.StatusCode, string(body))
	var th threadJSON
	require.NoError(c.t, json.Unmarshal(body, &th))
	return resp.StatusCode, th
}

func (c tc) get(id string) threadJSON {
	c.t.Helper()
	resp, body := c.call(http.MethodGet, "/v1/threads/"+id, nil)
	require.Equal(c.t, 200, resp.StatusCode, string(body))
	var th threadJSON
	require.NoError(c.t, json.Unmarshal(body, &th))
	return th
}

func (c tc) exec(id, command string) execJSON {
	c.t.Helper()
	resp, body := c.call(http.MethodPost, "/v1/threads/"+id+"/exec", map[string]any{"command": command})
	require.Equal(c.t, 200, resp.StatusCode, string(body))
	var r execJSON
	require.NoError(c.t, json.Unmarshal(body, &r))
	return r
}

// requireErr checks status, JSON error body and code.
func requireErr(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, string(body))
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), resp.Header.Get("Content-Type"))
	var e errJSON
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	require.Equal(t, code, e.Error.Code, string(body))
	require.NotEmpty(t, e.Error.Message)
}

// liveSandboxes lists the emulator's sandboxes of one thread that are not
// destroyed.
func liveSandboxes(t *testing.T, env *testenv.Env, user, thread string) []daytona.Sandbox {
	t.Helper()
	return liveSandboxesLabelled(t, env, map[string]string{daytona.LabelUser: user, daytona.LabelThread: thread})
}

// liveSandboxesLabelled lists threadbox's sandboxes with the given labels that
// are not destroyed.
func liveSandboxesLabelled(t *testing.T, env *testenv.Env, labels map[string]string) []daytona.Sandbox {
	t.Helper()
	labels[daytona.LabelManagedBy] = daytona.LabelManagedByValue
	all, err := env.Gateway.ListSandboxes(context.Background(), labels)
	require.NoError(t, err)
	var out []daytona.Sandbox
	for _, s := range all {
		if s.State != daytona.StateDestroyed && s.State != daytona.StateDestroying {
			out = append(out, s)
		}
	}
	return out
}

// sandboxState is the emulator's state of a sandbox ("" when it is gone).
func sandboxState(t *testing.T, env *testenv.Env, id string) daytona.SandboxState {
	t.Helper()
	sb, err := env.Gateway.GetSandbox(context.Background(), id)
	if err != nil {
		require.ErrorIs(t, err, daytona.ErrNotFound)
		return ""
	}
	return sb.State
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func stringsReader(s string) io.Reader {
	if s == "" {
		return nil
	}
	return strings.NewReader(s)
}

// multipartBody builds an upload body from path/content pairs, in order.
func multipartBody(t *testing.T, pairs ...string) (string, io.Reader) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(pairs); i += 2 {
		require.NoError(t, mw.WriteField("path", pairs[i]))
		fw, err := mw.CreateFormFile("file", "f")
		require.NoError(t, err)
		_, err = fw.Write([]byte(pairs[i+1]))
		require.NoError(t, err)
	}
	require.NoError(t, mw.Close())
	return mw.FormDataContentType(), &buf
}
