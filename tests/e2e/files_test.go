package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestFiles runs the files area end to end on one testenv (Temporal, the
// Daytona emulator, PostgreSQL, the worker and the API): REST, WebDAV,
// litmus, rclone, tus, quota, bad input and the files sandbox lifecycle.
func TestFiles(t *testing.T) {
	env := testenv.New(t, testenv.Options{FilesAutoStop: 3 * time.Second})
	key := env.UserKey

	t.Run("rest", func(t *testing.T) {
		resp, body := fdo(t, env, key, http.MethodPut, "/v1/files?path=docs/a.txt", strings.NewReader("hello"), nil)
		require.Equal(t, 201, resp.StatusCode, body)
		resp, body = fdo(t, env, key, http.MethodGet, "/v1/files?path=docs/a.txt", nil, nil)
		require.Equal(t, 200, resp.StatusCode, body)
		require.Equal(t, "hello", body)
		require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))

		resp, body = fdo(t, env, key, http.MethodGet, "/v1/files?path=docs", nil, nil)
		require.Equal(t, 200, resp.StatusCode, body)
		var list struct {
			Entries []struct {
				Name       string    `json:"name"`
				Size       int64     `json:"size"`
				IsDir      bool      `json:"is_dir"`
				ModifiedAt time.Time `json:"modified_at"`
			} `json:"entries"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &list))
		require.Len(t, list.Entries, 1)
		require.Equal(t, "a.txt", list.Entries[0].Name)
		require.EqualValues(t, 5, list.Entries[0].Size)
		require.False(t, list.Entries[0].IsDir)
		require.False(t, list.Entries[0].ModifiedAt.IsZero())

		resp, body = fdo(t, env, key, http.MethodPost, "/v1/files/move", strings.NewReader(`{"from":"docs/a.txt","to":"docs/b.txt"}`), map[string]string{"Content-Type": "application/json"})
		require.Equal(t, 200, resp.StatusCode, body)
		resp, _ = fdo(t, env, key, http.MethodGet, "/v1/files?path=docs/a.txt", nil, nil)
		require.Equal(t, 404, resp.StatusCode)
		resp, body = fdo(t, env, key, http.MethodGet, "/v1/files?path=/docs/b.txt", nil, map[string]string{"Range": "bytes=1-3"})
		require.Equal(t, 206, resp.StatusCode, body)
		require.Equal(t, "ell", body)

		// A move onto an existing file is refused with a precise code (found
		// from a stat: Daytona's answer is a bare 409) and overwrites nothing.
		resp, body = fdo(t, env, key, http.MethodPut, "/v1/files?path=docs/c.txt", strings.NewReader("other"), nil)
		require.Equal(t, 201, resp.StatusCode, body)
		resp, body = fdo(t, env, key, http.MethodPost, "/v1/files/move", strings.NewReader(`{"from":"docs/b.txt","to":"docs/c.txt"}`), map[string]string{"Content-Type": "application/json"})
		require.Equal(t, 409, resp.StatusCode, body)
		require.Contains(t, body, "file_exists")
		_, body = fdo(t, env, key, http.MethodGet, "/v1/files?path=docs/c.txt", nil, nil)
		require.Equal(t, "other", body)
		_, body = fdo(t, env, key, http.MethodGet, "/v1/files?path=docs/b.txt", nil, nil)
		require.Equal(t, "hello", body)

		resp, body = fdo(t, env, key, http.MethodPut, "/v1/files?path=docs", strings.NewReader("x"), nil)
		require.Equal(t, 409, resp.StatusCode, body)
		require.Contains(t, body, "is_a_directory")
		resp, body = fdo(t, env, key, http.MethodPost, "/v1/files/move", strings.NewReader(`{"from":"docs/b.txt","to":"docs/b.txt/x"}`), map[string]string{"Content-Type": "application/json"})
		require.Equal(t, 400, resp.StatusCode, body)
		require.Contains(t, body, "invalid_move")
		resp, body = fdo(t, env, key, http.MethodDelete, "/v1/files?path=docs", nil, nil)
		require.Equal(t, 409, resp.StatusCode, body)
		resp, body = fdo(t, env, key, http.MethodDelete, "/v1/files?path=docs&recursive=true", nil, nil)
		require.Equal(t, 204, resp.StatusCode, body)
		resp, _ = fdo(t, env, key, http.MethodGet, "/v1/files?path=docs", nil, nil)
		require.Equal(t, 404, resp.StatusCode)

		// Another user sees only their own (empty) volume.
		other := env.Key("other-"+env.UserID, false)
		resp, body = fdo(t, env, key, http.MethodPut, "/v1/files?path=mine.txt", strings.NewReader("x"), nil)
		require.Equal(t, 201, resp.StatusCode, body)
		resp, _ = fdo(t, env, other, http.MethodGet, "/v1/files?path=mine.txt", nil, nil)
		require.Equal(t, 404, resp.StatusCode)
		resp, _ = fdo(t, env, "", http.MethodGet, "/v1/files?path=mine.txt", nil, nil)
		require.Equal(t, 401, resp.StatusCode)
	})
	t.Run("dav", func(t *testing.T) { testDav(t, env, key) })
	t.Run("litmus", func(t *testing.T) { testLitmus(t, env, key) })
	t.Run("rclone", func(t *testing.T) { testRclone(t, env, key) })
	t.Run("tus", func(t *testing.T) { testTusProtocol(t, env, key) })
	t.Run("tus-js-client", func(t *testing.T) { testTusJSClient(t, env, key) })
	t.Run("bad-input", func(t *testing.T) { testBadInput(t, env, key) })
	t.Run("quota", func(t *testing.T) { testQuota(t, env) })
	t.Run("lifecycle", func(t *testing.T) { testLifecycle(t, env, key) })
	t.Run("long-transfer", func(t *testing.T) { testLongTransfer(t, env, key) })
	t.Run("incomplete-body", func(t *testing.T) { testIncompleteBody(t, env, key) })
	// Each with users of its own, after the lifecycle check (which times the
	// idle stops of the first user's sandboxes).
	t.Run("quota-edge", func(t *testing.T) { testQuotaEdge(t, env) })
	t.Run("delete-during-write", func(t *testing.T) { testDeleteDuringWrite(t, env) })
}

// The files routes get the same suspect-and-retry path as thread routes: a
// files sandbox stopped behind threadbox's back (here directly in the
// emulator, as Daytona's own backstop or an operator would) while the API
// still trusts its cached window is started again, and the request
// succeeds.
func TestFilesSandboxStoppedBehindTheCache(t *testing.T) {
	env := testenv.New(t, testenv.Options{FilesAutoStop: time.Minute})
	key := env.UserKey
	resp, body := fdo(t, env, key, http.MethodPut, "/dav/note.txt", strings.NewReader("kept"), nil)
	require.Equal(t, 201, resp.StatusCode, body)
	sbs := sandboxesOf(t, env, env.UserID, "files")
	require.Len(t, sbs, 1)
	ctx := context.Background()
	require.NoError(t, env.Gateway.StopSandbox(ctx, sbs[0].ID))
	require.Equal(t, daytona.StateStopped, sandboxState(t, env, sbs[0].ID))

	resp, body = fdo(t, env, key, http.MethodGet, "/dav/note.txt", nil, nil)
	require.Equal(t, 200, resp.StatusCode, body)
	require.Equal(t, "kept", body)
	require.Equal(t, daytona.StateStarted, sandboxState(t, env, sbs[0].ID), "the same files sandbox runs again")

	// Likewise a PROPFIND (a body, replayed) and the REST route.
	require.NoError(t, env.Gateway.StopSandbox(ctx, sbs[0].ID))
	propfind := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`
	resp, body = fdo(t, env, key, "PROPFIND", "/dav/", strings.NewReader(propfind), map[string]string{"Depth": "1"})
	require.Equal(t, 207, resp.StatusCode, body)
	require.Contains(t, body, "note.txt")
	require.NoError(t, env.Gateway.StopSandbox(ctx, sbs[0].ID))
	resp, body = fdo(t, env, key, http.MethodGet, "/v1/files?path=note.txt", nil, nil)
	require.Equal(t, 200, resp.StatusCode, body)
	require.Equal(t, "kept", body)
}
