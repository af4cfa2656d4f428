package e2e_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/internal/testenv"
)

func tusHeaders(extra map[string]string) map[string]string {
	h := map[string]string{"Tus-Resumable": "1.0.0"}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func tusMeta(path string) string { return "path " + base64.StdEncoding.EncodeToString([]byte(path)) }

// tusCreate creates an upload and returns its URL path (or the failing status).
func tusCreate(t *testing.T, env *testenv.Env, key, path string, size int) (string, int) {
	t.Helper()
	resp, body := fdo(t, env, key, http.MethodPost, "/v1/uploads/", nil, tusHeaders(map[string]string{
		"Upload-Length": strconv.Itoa(size), "Upload-Metadata": tusMeta(path)}))
	if resp.StatusCode != 201 {
		return body, resp.StatusCode
	}
	loc := resp.Header.Get("Location")
	require.NotEmpty(t, loc)
	return strings.TrimPrefix(loc, env.URL), 201
}

func tusPatch(t *testing.T, env *testenv.Env, key, loc string, offset int, data []byte) *http.Response {
	t.Helper()
	resp, _ := fdo(t, env, key, http.MethodPatch, loc, bytes.NewReader(data), tusHeaders(map[string]string{
		"Upload-Offset": strconv.Itoa(offset), "Content-Type": "application/offset+octet-stream"}))
	return resp
}

// testTusProtocol drives tus by hand: owner checks, offsets, finish, HEAD
// after finish, bad destinations.
func testTusProtocol(t *testing.T, env *testenv.Env, key string) {
	data := make([]byte, 300_000)
	_, _ = rand.Read(data)
	loc, status := tusCreate(t, env, key, "uploads/by-hand.bin", len(data))
	require.Equal(t, 201, status, loc)

	other := env.Key("tusother-"+env.UserID, false)
	resp, _ := fdo(t, env, other, http.MethodHead, loc, nil, tusHeaders(nil))
	require.Equal(t, 404, resp.StatusCode, "another user's upload must not exist for them")
	require.Equal(t, 404, tusPatch(t, env, other, loc, 0, data[:10]).StatusCode)

	require.Equal(t, 204, tusPatch(t, env, key, loc, 0, data[:100_000]).StatusCode)
	require.Equal(t, 409, tusPatch(t, env, key, loc, 50_000, data[50_000:60_000]).StatusCode, "wrong offset")
	resp, _ = fdo(t, env, key, http.MethodHead, loc, nil, tusHeaders(nil))
	require.Equal(t, "100000", resp.Header.Get("Upload-Offset"))
	resp = tusPatch(t, env, key, loc, 100_000, data[100_000:])
	require.Equal(t, 204, resp.StatusCode)
	require.Equal(t, "true", resp.Header.Get("Upload-Stored"))

	// Stored: readable through the files API, and HEAD still answers complete.
	resp, body := fdo(t, env, key, http.MethodGet, "/v1/files?path=uploads/by-hand.bin", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, data, []byte(body))
	resp, _ = fdo(t, env, key, http.MethodHead, loc, nil, tusHeaders(nil))
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, strconv.Itoa(len(data)), resp.Header.Get("Upload-Offset"))
	require.Equal(t, strconv.Itoa(len(data)), resp.Header.Get("Upload-Length"))
	resp, _ = fdo(t, env, other, http.MethodHead, loc, nil, tusHeaders(nil))
	require.Equal(t, 404, resp.StatusCode)
	spools, _ := filepath.Glob(filepath.Join(env.Config.UploadDir, "*"))
	require.Empty(t, spools, "the spool is removed once the file is stored")

	for _, bad := range []string{"../escape.bin", "a/../../escape.bin", "%2e%2e/escape.bin", "..%2fescape.bin", "x\x00y", "/", ""} {
		body, status := tusCreate(t, env, key, bad, 10)
		require.Equal(t, 400, status, "path %q: %s", bad, body)
		// Errors have the API's JSON shape, like every other route's.
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &e), "path %q: %s", bad, body)
		require.NotEmpty(t, e.Error.Code)
		require.NotEmpty(t, e.Error.Message)
	}
	resp, _ = fdo(t, env, key, http.MethodHead, "/v1/uploads/..%2f..%2fetc", nil, tusHeaders(nil))
	require.Equal(t, 404, resp.StatusCode)
	resp, _ = fdo(t, env, "", http.MethodPost, "/v1/uploads/", nil, tusHeaders(map[string]string{"Upload-Length": "1", "Upload-Metadata": tusMeta("x")}))
	require.Equal(t, 401, resp.StatusCode)
}

// testTusJSClient uploads with tus-js-client, kills the client midway,
// resumes with a new client process, and reads the file back from a thread.
func testTusJSClient(t *testing.T, env *testenv.Env, key string) {
	dir := filepath.Join("testdata", "tusclient")
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node is required for the tus-js-client test")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "tus-js-client")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm ci in %s failed (tus-js-client is needed; is the npm registry reachable?):\n%s", dir, out)
	}
	data := make([]byte, 5<<20+123)
	_, _ = rand.Read(data)
	file := filepath.Join(t.TempDir(), "big.bin")
	require.NoError(t, os.WriteFile(file, data, 0o644))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(node, append([]string{filepath.Join(dir, "upload.js")}, args...)...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	endpoint := env.URL + "/v1/uploads/"
	out := run(endpoint, key, file, "tus/big.bin", strconv.Itoa(2<<20))
	require.Contains(t, out, "URL ")
	url := strings.TrimSpace(out[strings.Index(out, "URL ")+4:])
	resp, _ := fdo(t, env, key, http.MethodHead, strings.TrimPrefix(url, env.URL), nil, tusHeaders(nil))
	off, _ := strconv.Atoi(resp.Header.Get("Upload-Offset"))
	require.Greater(t, off, 0)
	require.Less(t, off, len(data), "the first client was interrupted before the end")

	out = run(endpoint, key, file, "tus/big.bin", "0", url)
	require.Contains(t, out, "DONE "+url)

	// Read it from an agent sandbox of one of the user's threads.
	resp, body := fdo(t, env, key, http.MethodPost, "/v1/threads", strings.NewReader(`{"thread_id":"tus-reader"}`), map[string]string{"Content-Type": "application/json"})
	require.Contains(t, []int{200, 201}, resp.StatusCode, body)
	resp, body = fdo(t, env, key, http.MethodPost, "/v1/threads/tus-reader/exec",
		strings.NewReader(`{"command":"sha256sum /home/daytona/volume/tus/big.bin && cat /home/daytona/volume/tus/big.bin | wc -c"}`),
		map[string]string{"Content-Type": "application/json"})
	require.Equal(t, 200, resp.StatusCode, body)
	require.Contains(t, body, sha256hex(data))
	require.Contains(t, body, strconv.Itoa(len(data)))
	_ = time.Second
}
