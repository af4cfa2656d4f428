package uploads_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api/uploads"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/sandboxfs"
	"github.com/threadbox/threadbox/volume"
)

// rig is the upload service over a spool dir, pushing into real (emulated)
// sandbox volumes: each user's volume is a directory of one sandbox.
type rig struct {
	dir   string
	pool  *pgxpool.Pool
	q     *db.Queries
	sb    *testenv.Sandbox
	quota int64
}

func newRig(t *testing.T) *rig {
	pool, _ := testenv.Database(t)
	return &rig{dir: t.TempDir(), pool: pool, q: db.New(pool), sb: testenv.NewSandbox(t), quota: 1 << 30}
}

// files is user's volume.
func (r *rig) files(user string) sandboxfs.FS {
	return sandboxfs.FS{TB: r.sb.Toolbox, Root: entity.VolumeMountPath + "/" + user}
}

// stored reads a file of user's volume.
func (r *rig) stored(t *testing.T, user, p string) []byte {
	t.Helper()
	rd, err := r.files(user).Download(context.Background(), p, 0, -1)
	require.NoError(t, err)
	defer rd.Close()
	b, err := io.ReadAll(rd)
	require.NoError(t, err)
	return b
}

// Use implements volume.Opener over the rig's sandbox.
func (r *rig) Use(ctx context.Context, user string, _ volume.UseOptions, fn func(context.Context, *volume.Volume) error) error {
	files := r.files(user)
	return fn(ctx, &volume.Volume{Files: files, Quota: &volume.Quota{Pool: r.pool, UserID: user, Limit: r.quota, MaxAge: time.Minute,
		Measure: func(ctx context.Context) (int64, error) { return volume.Measure(ctx, files) }}})
}

func (r *rig) start(t *testing.T) (*uploads.Service, *httptest.Server) {
	t.Helper()
	svc, err := uploads.New(uploads.Config{
		Dir: r.dir, BasePath: "/up/", QuotaBytes: r.quota, SpoolTTL: time.Hour, Queries: r.q,
		PushBackoff: 10 * time.Millisecond, Logger: slogDiscard(), Volumes: r,
	})
	require.NoError(t, err)
	h := http.StripPrefix("/up", svc.Handler())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := auth.WithPrincipal(req.Context(), auth.Principal{UserID: req.Header.Get("X-User")})
		h.ServeHTTP(w, req.WithContext(ctx))
	}))
	return svc, srv
}

func send(t *testing.T, method, url, user string, body []byte, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("X-User", user)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

// An upload resumes on a new server process over the same spool, and the
// owner is checked on every request.
func TestResumeAcrossServerRestart(t *testing.T) {
	r := newRig(t)
	data := make([]byte, 200_000)
	_, _ = rand.Read(data)
	svc, srv := r.start(t)
	resp := send(t, "POST", srv.URL+"/up/", "u1", nil, map[string]string{
		"Upload-Length": strconv.Itoa(len(data)), "Upload-Metadata": "path " + base64.StdEncoding.EncodeToString([]byte("d/f.bin"))})
	require.Equal(t, 201, resp.StatusCode)
	id := filepath.Base(resp.Header.Get("Location"))
	patch := map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
	require.Equal(t, 204, send(t, "PATCH", srv.URL+"/up/"+id, "u1", data[:80_000], patch).StatusCode)
	require.Equal(t, 404, send(t, "HEAD", srv.URL+"/up/"+id, "u2", nil, nil).StatusCode)
	srv.Close()
	svc.Close()

	svc, srv = r.start(t) // "restarted" server
	defer func() { srv.Close(); svc.Close() }()
	resp = send(t, "HEAD", srv.URL+"/up/"+id, "u1", nil, nil)
	require.Equal(t, "80000", resp.Header.Get("Upload-Offset"))
	patch["Upload-Offset"] = "80000"
	require.Equal(t, 404, send(t, "PATCH", srv.URL+"/up/"+id, "u2", data[80_000:], patch).StatusCode)
	require.Equal(t, 204, send(t, "PATCH", srv.URL+"/up/"+id, "u1", data[80_000:], patch).StatusCode)
	require.Equal(t, data, r.stored(t, "u1", "/d/f.bin"))
	resp = send(t, "HEAD", srv.URL+"/up/"+id, "u1", nil, nil)
	require.Equal(t, strconv.Itoa(len(data)), resp.Header.Get("Upload-Offset"), "a finished upload still answers HEAD")
	row, err := r.q.GetUpload(context.Background(), db.GetUploadParams{ID: id, UserID: "u1"})
	require.NoError(t, err)
	require.Equal(t, "stored", row.State)
}

// The janitor removes spools idle for longer than SpoolTTL and no others.
func TestJanitorRemovesStaleSpools(t *testing.T) {
	r := newRig(t)
	svc, srv := r.start(t)
	defer func() { srv.Close(); svc.Close() }()
	var ids []string
	for range 2 {
		resp := send(t, "POST", srv.URL+"/up/", "u1", nil, map[string]string{
			"Upload-Length": "10", "Upload-Metadata": "path " + base64.StdEncoding.EncodeToString([]byte("x"))})
		require.Equal(t, 201, resp.StatusCode)
		ids = append(ids, filepath.Base(resp.Header.Get("Location")))
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, f := range []string{ids[0], ids[0] + ".info"} {
		require.NoError(t, os.Chtimes(filepath.Join(r.dir, f), old, old))
	}
	svc.Sweep(context.Background(), time.Now())
	_, err := os.Stat(filepath.Join(r.dir, ids[0]+".info"))
	require.True(t, os.IsNotExist(err), "stale spool removed")
	_, err = os.Stat(filepath.Join(r.dir, ids[1]+".info"))
	require.NoError(t, err, "fresh spool kept")
	row, err := r.q.GetUpload(context.Background(), db.GetUploadParams{ID: ids[0], UserID: "u1"})
	require.NoError(t, err)
	require.Equal(t, "failed", row.State)
	require.Equal(t, 404, send(t, "HEAD", srv.URL+"/up/"+ids[0], "u1", nil, nil).StatusCode)
}
