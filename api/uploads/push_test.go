package uploads_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
)

// failFirst answers the first n toolbox requests of route ("POST
// files/upload") with a 500, as a Daytona toolbox having a bad moment does.
func failFirst(n int32, route string) testenv.Interceptor {
	var left atomic.Int32
	left.Store(n)
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
		if r.Method+" "+testenv.Route(r.URL.Path) != route || left.Add(-1) < 0 {
			return false
		}
		http.Error(w, `{"message":"injected fault"}`, http.StatusInternalServerError)
		return true
	}
}

func createUpload(t *testing.T, url, user, dst string, size int) (*http.Response, string) {
	t.Helper()
	resp := send(t, "POST", url+"/up/", user, nil, map[string]string{
		"Upload-Length": strconv.Itoa(size), "Upload-Metadata": "path " + base64.StdEncoding.EncodeToString([]byte(dst))})
	return resp, filepath.Base(resp.Header.Get("Location"))
}

var patchHeaders = map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}

// A push into the volume that fails twice (a toolbox 5xx) and then works
// delivers the file within the last PATCH: the push is retried with backoff
// and the spool is not thrown away on the first failure.
func TestPushFailsTwiceThenSucceeds(t *testing.T) {
	r := newRig(t)
	svc, srv := r.start(t)
	defer func() { srv.Close(); svc.Close() }()
	data := make([]byte, 100_000)
	_, _ = rand.Read(data)
	resp, id := createUpload(t, srv.URL, "u1", "retry/f.bin", len(data))
	require.Equal(t, 201, resp.StatusCode)

	r.sb.Calls.Intercept(failFirst(2, "POST files/upload"))
	resp = send(t, "PATCH", srv.URL+"/up/"+id, "u1", data, patchHeaders)
	require.Equal(t, 204, resp.StatusCode)
	require.Equal(t, "true", resp.Header.Get("Upload-Stored"))
	require.Equal(t, data, r.stored(t, "u1", "/retry/f.bin"))
	require.Equal(t, 3, r.sb.Calls.Count("POST files/upload"), "two failed pushes, then the one that worked")
	spools, _ := filepath.Glob(filepath.Join(r.dir, id+"*"))
	require.Empty(t, spools, "the spool goes once the file is stored")
}

// A push that keeps failing answers the last PATCH with the failure but
// keeps the spool and the reservation; the client's next request (HEAD,
// as tus clients send when they resume) pushes again and finishes it.
func TestFailedPushIsFinishedByTheNextRequest(t *testing.T) {
	r := newRig(t)
	svc, srv := r.start(t)
	defer func() { srv.Close(); svc.Close() }()
	data := make([]byte, 50_000)
	_, _ = rand.Read(data)
	resp, id := createUpload(t, srv.URL, "u1", "later.bin", len(data))
	require.Equal(t, 201, resp.StatusCode)

	r.sb.Calls.Intercept(failFirst(3, "POST files/upload")) // every attempt of this request
	resp = send(t, "PATCH", srv.URL+"/up/"+id, "u1", data, patchHeaders)
	require.GreaterOrEqual(t, resp.StatusCode, 500, "the failed push is the answer")
	_, err := os.Stat(filepath.Join(r.dir, id))
	require.NoError(t, err, "the spool is kept")
	row, err := r.q.GetUpload(context.Background(), db.GetUploadParams{ID: id, UserID: "u1"})
	require.NoError(t, err)
	require.Equal(t, "receiving", row.State)

	resp = send(t, "HEAD", srv.URL+"/up/"+id, "u1", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, strconv.Itoa(len(data)), resp.Header.Get("Upload-Offset"))
	require.Equal(t, data, r.stored(t, "u1", "/later.bin"))
	row, err = r.q.GetUpload(context.Background(), db.GetUploadParams{ID: id, UserID: "u1"})
	require.NoError(t, err)
	require.Equal(t, "stored", row.State)
	// A PATCH after that is a no-op success, as for any finished upload.
	patch := map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": strconv.Itoa(len(data))}
	require.Equal(t, 204, send(t, "PATCH", srv.URL+"/up/"+id, "u1", nil, patch).StatusCode)
}

// A cancelled upload (tus DELETE) gives its reserved room back at once.
func TestCancelledUploadFreesItsQuota(t *testing.T) {
	r := newRig(t)
	r.quota = 1000
	svc, srv := r.start(t)
	defer func() { srv.Close(); svc.Close() }()
	resp, first := createUpload(t, srv.URL, "u1", "a.bin", 800)
	require.Equal(t, 201, resp.StatusCode)
	resp, _ = createUpload(t, srv.URL, "u1", "b.bin", 800)
	require.Equal(t, 507, resp.StatusCode, "the first upload's 800 bytes are reserved")

	resp = send(t, "DELETE", srv.URL+"/up/"+first, "u1", nil, nil)
	require.Equal(t, 204, resp.StatusCode)
	resp, second := createUpload(t, srv.URL, "u1", "b.bin", 800)
	require.Equal(t, 201, resp.StatusCode, "the cancelled upload's room is free again")
	row, err := r.q.GetUpload(context.Background(), db.GetUploadParams{ID: first, UserID: "u1"})
	require.NoError(t, err)
	require.Equal(t, "failed", row.State)

	// The one that took its place is stored and counted; nothing is left
	// reserved.
	data := make([]byte, 800)
	require.Equal(t, 204, send(t, "PATCH", srv.URL+"/up/"+second, "u1", data, patchHeaders).StatusCode)
	var reserved int64
	require.NoError(t, r.pool.QueryRow(context.Background(),
		`SELECT COALESCE(SUM(bytes), 0) FROM volume_reservations WHERE user_id = 'u1'`).Scan(&reserved))
	require.Zero(t, reserved)
}

// An upload whose reservation is gone (it sat idle until the reservation
// expired and was swept) reserves again when it is finished: it is stored
// when there is room, and refused with 507 when there is not.
func TestPushAfterItsReservationExpired(t *testing.T) {
	r := newRig(t)
	r.quota = 1000
	svc, srv := r.start(t)
	defer func() { srv.Close(); svc.Close() }()
	ctx := context.Background()
	resp, id := createUpload(t, srv.URL, "u1", "late.bin", 600)
	require.Equal(t, 201, resp.StatusCode)
	_, err := r.pool.Exec(ctx, `DELETE FROM volume_reservations WHERE id = $1`, id)
	require.NoError(t, err)
	resp, other := createUpload(t, srv.URL, "u1", "other.bin", 600)
	require.Equal(t, 201, resp.StatusCode, "the swept reservation's room went to another upload")

	resp = send(t, "PATCH", srv.URL+"/up/"+id, "u1", make([]byte, 600), patchHeaders)
	require.Equal(t, http.StatusInsufficientStorage, resp.StatusCode, "no room left for it now")
	resp = send(t, "DELETE", srv.URL+"/up/"+other, "u1", nil, nil)
	require.Equal(t, 204, resp.StatusCode)
	resp = send(t, "HEAD", srv.URL+"/up/"+id, "u1", nil, nil)
	require.Equal(t, 200, resp.StatusCode, "with room again, the next request stores it")
	require.Len(t, r.stored(t, "u1", "/late.bin"), 600)
}

// The janitor fails an upload still receiving whose reservation is gone
// (expired and swept: its spool was lost with another replica's disk, or
// the process died): nobody can finish it, and HEAD then says 404.
func TestJanitorFailsAbandonedUploads(t *testing.T) {
	r := newRig(t)
	svc, srv := r.start(t)
	defer func() { srv.Close(); svc.Close() }()
	ctx := context.Background()
	resp, gone := createUpload(t, srv.URL, "u1", "gone.bin", 10)
	require.Equal(t, 201, resp.StatusCode)
	resp, live := createUpload(t, srv.URL, "u1", "live.bin", 10)
	require.Equal(t, 201, resp.StatusCode)
	// Created long ago, its reservation swept, its spool not on this disk.
	_, err := r.pool.Exec(ctx, `DELETE FROM volume_reservations WHERE id = $1`, gone)
	require.NoError(t, err)
	_, err = r.pool.Exec(ctx, `UPDATE uploads SET created_at = now() - interval '2 hours' WHERE id = $1`, gone)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(r.dir, gone)))
	require.NoError(t, os.Remove(filepath.Join(r.dir, gone+".info")))

	svc.Sweep(ctx, time.Now())
	for id, want := range map[string]string{gone: "failed", live: "receiving"} {
		row, err := r.q.GetUpload(ctx, db.GetUploadParams{ID: id, UserID: "u1"})
		require.NoError(t, err)
		require.Equal(t, want, row.State, id)
	}
}
