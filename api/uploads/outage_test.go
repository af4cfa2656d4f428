package uploads_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/threadbox/threadbox/api/uploads"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/uploadspool"
)

// pgLockedSpool is the local spool with the replicas' lock table in
// PostgreSQL (the S3 spool's locker), so the database is on every PATCH's
// path twice: the lock, and the reservation's renewal.
type pgLockedSpool struct {
	*uploadspool.Local
	locker *uploadspool.Locker
}

func (s pgLockedSpool) Locker() handler.Locker { return s.locker }

func (s pgLockedSpool) Close() { s.locker.Close(); s.Local.Close() }

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	code   string
}

func tus(t *testing.T, method, u string, body []byte, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Tus-Resumable", "1.0.0")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return answer{status: resp.StatusCode, header: resp.Header, code: e.Error.Code}
}

// A PostgreSQL outage under an upload in progress is 503 database_unavailable
// with Retry-After, and the upload resumes once the database is back. It was
// tusd's own 500 internal_server_error (an untyped error from the lock table
// or the reservation's renewal), with no log line: fault suite at 9b7ac62.
func TestDatabaseOutageUnderUploadIs503(t *testing.T) {
	_, dbURL := testenv.Database(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	proxy := testenv.NewProxy(t, u.Host)
	proxy.Start()
	u.Host = proxy.Addr
	pool, err := db.Connect(context.Background(), u.String())
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	r := &rig{dir: t.TempDir(), pool: pool, q: db.New(pool), sb: testenv.NewSandbox(t), quota: 1 << 30}
	local, err := uploadspool.NewLocal(r.dir)
	require.NoError(t, err)
	spool := pgLockedSpool{Local: local, locker: uploadspool.NewLocker(pool, 0, slogDiscard())}
	svc, err := uploads.New(uploads.Config{
		Spool: spool, BasePath: "/up/", QuotaBytes: r.quota, SpoolTTL: time.Hour, Queries: r.q,
		PushBackoff: 10 * time.Millisecond, Logger: slogDiscard(), Volumes: r,
	})
	require.NoError(t, err)
	t.Cleanup(svc.Close)
	h := http.StripPrefix("/up", svc.Handler())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(w, req.WithContext(auth.WithPrincipal(req.Context(), auth.Principal{UserID: "u1"})))
	}))
	t.Cleanup(srv.Close)

	data := make([]byte, 100_000)
	_, _ = rand.Read(data)
	a := tus(t, "POST", srv.URL+"/up/", nil, map[string]string{
		"Upload-Length": strconv.Itoa(len(data)), "Upload-Metadata": "path " + base64.StdEncoding.EncodeToString([]byte("f.bin"))})
	require.Equal(t, 201, a.status)
	id := filepath.Base(a.header.Get("Location"))
	patch := map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
	require.Equal(t, 204, tus(t, "PATCH", srv.URL+"/up/"+id, data[:40_000], patch).status)

	proxy.Stop() // PostgreSQL unreachable: refused connections, the pool's cut
	patch["Upload-Offset"] = "40000"
	a = tus(t, "PATCH", srv.URL+"/up/"+id, data[40_000:], patch)
	require.Equal(t, http.StatusServiceUnavailable, a.status, "code %q", a.code)
	require.Equal(t, "database_unavailable", a.code)
	require.NotEmpty(t, a.header.Get("Retry-After"))

	proxy.Start()
	require.Eventually(t, func() bool {
		return tus(t, "PATCH", srv.URL+"/up/"+id, data[40_000:], patch).status == 204
	}, 30*time.Second, 250*time.Millisecond, "the upload resumes once the database is back")
	require.Equal(t, data, r.stored(t, "u1", "/f.bin"))
}
