package uploads_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api/dav"
	"github.com/threadbox/threadbox/api/dav/davtest"
	"github.com/threadbox/threadbox/api/uploads"
	"github.com/threadbox/threadbox/db"
)

type userKey struct{}

// rig is the upload service over a spool dir, "pushing" into a map.
type rig struct {
	dir    string
	q      *db.Queries
	mu     sync.Mutex
	stored map[string][]byte
}

func (r *rig) start(t *testing.T) (*uploads.Service, *httptest.Server) {
	t.Helper()
	svc, err := uploads.New(uploads.Config{
		Dir: r.dir, BasePath: "/up/", MaxSize: 1 << 30, SpoolTTL: time.Hour, Queries: r.q,
		Logger:    slogDiscard(),
		UserFrom:  func(ctx context.Context) (string, bool) { u, ok := ctx.Value(userKey{}).(string); return u, ok },
		CleanPath: dav.CleanPath,
		Admit:     func(context.Context, string, int64) error { return nil },
		Push: func(_ context.Context, user, p string, rd io.Reader, _ int64) error {
			b, err := io.ReadAll(rd)
			r.mu.Lock()
			r.stored[user+":"+p] = b
			r.mu.Unlock()
			return err
		},
		Status: func(err error) (int, string, string) {
			if errors.Is(err, dav.ErrBadPath) {
				return 400, "invalid_path", err.Error()
			}
			return 500, "internal", "internal"
		},
	})
	require.NoError(t, err)
	h := http.StripPrefix("/up", svc.Handler())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), userKey{}, req.Header.Get("X-User"))))
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
	r := &rig{dir: t.TempDir(), q: db.New(davtest.Database(t)), stored: map[string][]byte{}}
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
	require.Equal(t, data, r.stored["u1:/d/f.bin"])
	resp = send(t, "HEAD", srv.URL+"/up/"+id, "u1", nil, nil)
	require.Equal(t, strconv.Itoa(len(data)), resp.Header.Get("Upload-Offset"), "a finished upload still answers HEAD")
	row, err := r.q.GetUpload(context.Background(), db.GetUploadParams{ID: id, UserID: "u1"})
	require.NoError(t, err)
	require.Equal(t, "stored", row.State)
}

// The janitor removes spools idle for longer than SpoolTTL and no others.
func TestJanitorRemovesStaleSpools(t *testing.T) {
	r := &rig{dir: t.TempDir(), q: db.New(davtest.Database(t)), stored: map[string][]byte{}}
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
