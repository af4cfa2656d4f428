package e2e_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/internal/testenv"
)

func execIn(t *testing.T, env *testenv.Env, key, thread, command string) string {
	t.Helper()
	resp, body := fdo(t, env, key, http.MethodPost, "/v1/threads/"+thread+"/exec",
		strings.NewReader(`{"command":`+strconv.Quote(command)+`}`), map[string]string{"Content-Type": "application/json"})
	require.Equal(t, 200, resp.StatusCode, body)
	return body
}

// testQuota fills a fresh user's volume from an agent thread (a sparse file
// up to 1 MiB below the quota: writes made by agents never pass threadbox,
// the first quota decision measures them) and checks that every write path
// refuses what does not fit and leaves nothing behind.
func testQuota(t *testing.T, env *testenv.Env) {
	user := "quota-" + env.UserID
	key := env.Key(user, false)
	resp, body := fdo(t, env, key, http.MethodPost, "/v1/threads", strings.NewReader(`{"thread_id":"filler"}`), map[string]string{"Content-Type": "application/json"})
	require.Contains(t, []int{200, 201}, resp.StatusCode, body)
	limit := env.Config.VolumeQuotaBytes()
	execIn(t, env, key, "filler", "mkdir -p /home/daytona/volume && truncate -s "+strconv.FormatInt(limit-(1<<20), 10)+" /home/daytona/volume/filler")

	big := make([]byte, 2<<20)
	_, _ = rand.Read(big)
	resp, body = fdo(t, env, key, http.MethodPut, "/dav/big.bin", bytes.NewReader(big), nil)
	require.Equal(t, 507, resp.StatusCode, body)
	// Chunked (no Content-Length): refused once the stream passes the quota.
	resp, body = fdo(t, env, key, http.MethodPut, "/dav/big-chunked.bin", io.MultiReader(bytes.NewReader(big)), nil)
	require.Equal(t, 507, resp.StatusCode, body)
	resp, body = fdo(t, env, key, http.MethodPut, "/v1/files?path=big.bin", bytes.NewReader(big), nil)
	require.Equal(t, 507, resp.StatusCode, body)
	require.Contains(t, body, "quota_exceeded")
	_, status := tusCreate(t, env, key, "big.bin", len(big))
	require.Equal(t, 507, status)
	body, status = tusCreate(t, env, key, "huge.bin", int(limit+1))
	require.Equal(t, 413, status)
	require.Contains(t, body, `"too_large"`, "a body over the fixed limit is too_large on every route")

	// Uploads still receiving reserve their size: two parallel uploads cannot
	// both claim the 1 MiB left.
	first, status := tusCreate(t, env, key, "first.bin", 600_000)
	require.Equal(t, 201, status)
	_, status = tusCreate(t, env, key, "second.bin", 600_000)
	require.Equal(t, 507, status, "the second upload does not fit next to the first")
	// Nor does any other write: the upload's room is reserved for every path.
	resp, body = fdo(t, env, key, http.MethodPut, "/dav/small.bin", bytes.NewReader(big[:600_000]), nil)
	require.Equal(t, 507, resp.StatusCode, body)
	// Cancelling the upload gives its room back.
	resp, body = fdo(t, env, key, http.MethodDelete, first, nil, tusHeaders(nil))
	require.Equal(t, 204, resp.StatusCode, body)

	// 600 KB fits once, a COPY of it does not.
	resp, body = fdo(t, env, key, http.MethodPut, "/dav/small.bin", bytes.NewReader(big[:600_000]), nil)
	require.Equal(t, 201, resp.StatusCode, body)
	resp, body = fdo(t, env, key, "COPY", "/dav/small.bin", nil, map[string]string{"Destination": "/dav/small-copy.bin"})
	require.Equal(t, 507, resp.StatusCode, body)

	ls := execIn(t, env, key, "filler", "ls -a /home/daytona/volume")
	require.NotContains(t, ls, "big")
	require.NotContains(t, ls, "small-copy")
	require.NotContains(t, ls, ".tbpart-", "nothing partially written is left behind")
	require.Contains(t, ls, "small.bin")

	// Space freed by an agent is found again by re-measuring before refusing.
	execIn(t, env, key, "filler", "rm /home/daytona/volume/filler")
	resp, body = fdo(t, env, key, http.MethodPut, "/dav/big.bin", bytes.NewReader(big), nil)
	require.Equal(t, 201, resp.StatusCode, body)
}

// testLifecycle checks the files sandbox stops when idle and starts again on
// the next request, without touching the user's agent sandboxes.
func testLifecycle(t *testing.T, env *testenv.Env, key string) {
	user := env.UserID
	agents := sandboxesOf(t, env, user, "agent")
	require.NotEmpty(t, agents, "the tus test created a thread")
	// Wait until the agent sandboxes are stopped by their own idle timer,
	// and the files sandbox by its.
	testenv.Eventually(t, 30*time.Second, "sandboxes to stop when idle", func() bool {
		for _, kind := range []string{"agent", "files"} {
			for _, sb := range sandboxesOf(t, env, user, kind) {
				if sb.State != daytona.StateStopped {
					return false
				}
			}
		}
		return true
	})
	files := sandboxesOf(t, env, user, "files")
	require.Len(t, files, 1, "one files sandbox per user")

	resp, body := fdo(t, env, key, http.MethodPut, "/v1/files?path=wake.txt", strings.NewReader("awake"), nil)
	require.Equal(t, 201, resp.StatusCode, body)
	resp, body = fdo(t, env, key, "PROPFIND", "/dav/", nil, map[string]string{"Depth": "1"})
	require.Equal(t, 207, resp.StatusCode, body)
	require.Contains(t, body, "wake.txt")
	now := sandboxesOf(t, env, user, "files")
	require.Len(t, now, 1)
	require.Equal(t, files[0].ID, now[0].ID, "the same files sandbox is started again")
	require.Equal(t, daytona.StateStarted, now[0].State)

	after := sandboxesOf(t, env, user, "agent")
	require.Len(t, after, len(agents))
	for i := range after {
		require.Equal(t, agents[i].ID, after[i].ID)
		require.Equal(t, daytona.StateStopped, after[i].State, "files traffic never starts agent sandboxes")
	}
}

// testBadInput sends traversal in every path form and checks 400 and that
// nothing was touched.
func testBadInput(t *testing.T, env *testenv.Env, key string) {
	resp, body := fdo(t, env, key, http.MethodPut, "/v1/files?path=keep/me.txt", strings.NewReader("keep"), nil)
	require.Equal(t, 201, resp.StatusCode, body)
	for _, q := range []string{"../etc/passwd", "keep/../../x", "%252e%252e%252fx", "..%252fx", "a%00b", strings.Repeat("n", 300)} {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			resp, body := fdo(t, env, key, m, "/v1/files?path="+q, strings.NewReader("x"), nil)
			require.Equal(t, 400, resp.StatusCode, "%s %s: %s", m, q, body)
			require.Contains(t, body, "invalid_path")
		}
	}
	for _, mv := range []string{`{"from":"keep/me.txt","to":"../x"}`, `{"from":"../../etc/passwd","to":"x"}`, `{"from":"keep/me.txt","to":"%2e%2e/x"}`} {
		resp, body := fdo(t, env, key, http.MethodPost, "/v1/files/move", strings.NewReader(mv), map[string]string{"Content-Type": "application/json"})
		require.Equal(t, 400, resp.StatusCode, "%s: %s", mv, body)
	}
	for _, raw := range []string{"/dav/../etc/passwd", "/dav/%2e%2e/x", "/dav/keep/..%2f..%2fx", "/dav/keep/%2E%2E/%2E%2E/x", "/dav/a%00b"} {
		for _, m := range []string{http.MethodGet, http.MethodPut, "PROPFIND", "DELETE", "MKCOL"} {
			require.Equal(t, 400, rawRequest(t, env, key, m, raw, map[string]string{"Depth": "0"}), "%s %s", m, raw)
		}
	}
	for _, dst := range []string{"/dav/../x", env.URL + "/dav/%2e%2e/x", "/dav/keep/..%2f..%2fx", "/v1/files", "/x"} {
		for _, m := range []string{"MOVE", "COPY"} {
			resp, body := fdo(t, env, key, m, "/dav/keep/me.txt", nil, map[string]string{"Destination": dst})
			require.Equal(t, 400, resp.StatusCode, "%s to %s: %s", m, dst, body)
		}
	}
	resp, body = fdo(t, env, key, http.MethodGet, "/v1/files?path=keep/me.txt", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "keep", body, "bad requests touched nothing")
}
