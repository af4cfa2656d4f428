package e2e_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api/dav/davtest"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

// testDav covers WebDAV specifics that litmus does not: auth, isolation,
// finite depth, dead properties in PostgreSQL, locks, bad input.
func testDav(t *testing.T, env *testenv.Env, key string) {
	// OPTIONS needs no credentials; everything else does.
	resp, _ := fdo(t, env, "", http.MethodOptions, "/dav/", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "1, 2", resp.Header.Get("DAV"))
	resp, _ = fdo(t, env, "", "PROPFIND", "/dav/", nil, map[string]string{"Depth": "0"})
	require.Equal(t, 401, resp.StatusCode)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
	resp, _ = fdo(t, env, "wrong-key", "PROPFIND", "/dav/", nil, map[string]string{"Depth": "0"})
	require.Equal(t, 401, resp.StatusCode)

	// Basic auth with the key as password works too.
	req, _ := http.NewRequest("PUT", env.URL+"/dav/hello.txt", strings.NewReader("hi there"))
	req.SetBasicAuth("anyone", key)
	r, err := httpClient.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, 201, r.StatusCode)

	// Depth infinity (and none) is refused.
	resp, body := fdo(t, env, key, "PROPFIND", "/dav/", nil, map[string]string{"Depth": "infinity"})
	require.Equal(t, 403, resp.StatusCode)
	require.Contains(t, body, "propfind-finite-depth")
	resp, _ = fdo(t, env, key, "PROPFIND", "/dav/", nil, nil)
	require.Equal(t, 403, resp.StatusCode)

	// Depth 1 lists the file, with quota properties on the collection.
	resp, body = fdo(t, env, key, "PROPFIND", "/dav/", nil, map[string]string{"Depth": "1"})
	require.Equal(t, 207, resp.StatusCode, body)
	require.Contains(t, body, "/dav/hello.txt")
	require.Contains(t, body, "quota-available-bytes")
	require.Contains(t, body, "quota-used-bytes")

	// Another user's WebDAV view is their own volume.
	other := env.Key("davother-"+env.UserID, false)
	resp, body = fdo(t, env, other, "PROPFIND", "/dav/", nil, map[string]string{"Depth": "1"})
	require.Equal(t, 207, resp.StatusCode, body)
	require.NotContains(t, body, "hello.txt")
	resp, _ = fdo(t, env, other, http.MethodGet, "/dav/hello.txt", nil, nil)
	require.Equal(t, 404, resp.StatusCode)

	// Dead properties live in PostgreSQL and follow MOVE and DELETE.
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:tb"><D:set><D:prop><Z:color>blue</Z:color></D:prop></D:set></D:propertyupdate>`
	resp, body = fdo(t, env, key, "PROPPATCH", "/dav/hello.txt", strings.NewReader(patch), map[string]string{"Content-Type": "application/xml"})
	require.Equal(t, 207, resp.StatusCode, body)
	q := db.New(env.Pool)
	rows, err := q.DeadProps(context.Background(), db.DeadPropsParams{UserID: env.UserID, Paths: []string{"/hello.txt"}})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, "blue", rows[0].Xml)
	resp, _ = fdo(t, env, key, "MOVE", "/dav/hello.txt", nil, map[string]string{"Destination": env.URL + "/dav/moved.txt"})
	require.Equal(t, 201, resp.StatusCode)
	rows, _ = q.DeadProps(context.Background(), db.DeadPropsParams{UserID: env.UserID, Paths: []string{"/hello.txt", "/moved.txt"}})
	require.Len(t, rows, 1)
	require.Equal(t, "/moved.txt", rows[0].Path)
	resp, body = fdo(t, env, key, "PROPFIND", "/dav/moved.txt", nil, map[string]string{"Depth": "0"})
	require.Contains(t, body, "blue")
	resp, _ = fdo(t, env, key, http.MethodDelete, "/dav/moved.txt", nil, nil)
	require.Equal(t, 204, resp.StatusCode)
	rows, _ = q.DeadProps(context.Background(), db.DeadPropsParams{UserID: env.UserID, Paths: []string{"/moved.txt"}})
	require.Empty(t, rows)

	// A locked resource cannot be written without its token.
	resp, _ = fdo(t, env, key, http.MethodPut, "/dav/locked.txt", strings.NewReader("v1"), nil)
	require.Equal(t, 201, resp.StatusCode)
	lock := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`
	resp, body = fdo(t, env, key, "LOCK", "/dav/locked.txt", strings.NewReader(lock), map[string]string{"Content-Type": "application/xml"})
	require.Equal(t, 200, resp.StatusCode, body)
	token := resp.Header.Get("Lock-Token")
	require.NotEmpty(t, token)
	require.Contains(t, body, "Second-3600", "a LOCK without Timeout is clamped, not infinite")
	resp, _ = fdo(t, env, key, http.MethodPut, "/dav/locked.txt", strings.NewReader("v2"), nil)
	require.Equal(t, 423, resp.StatusCode)
	resp, _ = fdo(t, env, key, http.MethodDelete, "/dav/locked.txt", nil, nil)
	require.Equal(t, 423, resp.StatusCode)
	resp, _ = fdo(t, env, key, http.MethodPut, "/dav/locked.txt", strings.NewReader("v3"), map[string]string{"If": "(" + token + ")"})
	require.Equal(t, 201, resp.StatusCode) // x/net/webdav answers 201 to every successful PUT
	resp, body = fdo(t, env, key, http.MethodGet, "/dav/locked.txt", nil, nil)
	require.Equal(t, "v3", body)
	resp, _ = fdo(t, env, key, "UNLOCK", "/dav/locked.txt", nil, map[string]string{"Lock-Token": token})
	require.Equal(t, 204, resp.StatusCode)

	// MOVE without Overwrite overwrites (RFC 4918 default T).
	fdo(t, env, key, http.MethodPut, "/dav/m1.txt", strings.NewReader("one"), nil)
	resp, _ = fdo(t, env, key, "MOVE", "/dav/m1.txt", nil, map[string]string{"Destination": "/dav/locked.txt"})
	require.Equal(t, 204, resp.StatusCode)
	_, body = fdo(t, env, key, http.MethodGet, "/dav/locked.txt", nil, nil)
	require.Equal(t, "one", body)
	// Destination on another host is reduced to its path.
	resp, _ = fdo(t, env, key, "COPY", "/dav/locked.txt", nil, map[string]string{"Destination": "https://proxy.example/dav/copied.txt"})
	require.Equal(t, 201, resp.StatusCode)
	_, body = fdo(t, env, key, http.MethodGet, "/dav/copied.txt", nil, nil)
	require.Equal(t, "one", body)
}

// testLitmus runs litmus against /dav/ and compares with the baselines.
func testLitmus(t *testing.T, env *testenv.Env, key string) {
	got, out := davtest.RunLitmus(t, env.URL+"/dav/", "litmus", key)
	davtest.CompareWithBaseline(t, got,
		davtest.LoadResults(t, filepath.Join(testenv.RepoRoot(t), "api/dav/testdata/litmus-baseline-webdav-dir.txt")),
		davtest.LoadResults(t, filepath.Join(testenv.RepoRoot(t), "api/dav/testdata/litmus-threadbox.txt")))
	if t.Failed() {
		t.Log(out)
	}
}

// testRclone copies a tree in and out of /dav/ with rclone and compares bytes.
func testRclone(t *testing.T, env *testenv.Env, key string) {
	bin, err := exec.LookPath("rclone")
	require.NoError(t, err, "rclone is not installed (Debian: apt-get install -y rclone)")
	ctx := context.Background()
	obscured, err := exec.CommandContext(ctx, bin, "obscure", key).Output()
	require.NoError(t, err)
	src, back := t.TempDir(), t.TempDir()
	files := map[string]int{"a.txt": 10, "dir/b.bin": 3 << 20, "dir/sub/c.bin": 70_000, "dir/empty.txt": 0, "ünïcode name.txt": 100}
	for name, size := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		b := make([]byte, size)
		_, _ = rand.Read(b)
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "RCLONE_CONFIG="+filepath.Join(t.TempDir(), "rclone.conf"),
			"RCLONE_WEBDAV_URL="+env.URL+"/dav/", "RCLONE_WEBDAV_USER=rclone",
			"RCLONE_WEBDAV_PASS="+strings.TrimSpace(string(obscured)), "RCLONE_WEBDAV_VENDOR=other")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "rclone %v:\n%s", args, out)
	}
	run("copy", src, ":webdav:rclone-tree")
	run("copy", ":webdav:rclone-tree", back)
	for name, size := range files {
		a, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(name)))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(back, filepath.FromSlash(name)))
		require.NoError(t, err, name)
		require.Len(t, b, size, name)
		require.Equal(t, a, b, fmt.Sprintf("%s differs after the round trip", name))
	}
	run("check", src, ":webdav:rclone-tree")
}
