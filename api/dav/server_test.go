package dav_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/threadbox/threadbox/api/dav"
	"github.com/threadbox/threadbox/api/dav/davtest"
	"github.com/threadbox/threadbox/db"
)

const (
	testUser = "alice"
	testKey  = "alice-key"
	volRoot  = "/home/daytona/volume"
)

// davServer is the WebDAV handler over a local directory standing in for the
// files sandbox, with real PostgreSQL dead properties and quota accounting.
type davServer struct {
	URL  string
	TB   *davtest.LocalToolbox
	Vol  string // host directory of the volume
	Pool interface{}
	Q    *db.Queries
}

func newDavServer(t *testing.T, quota int64) *davServer {
	t.Helper()
	pool := davtest.Database(t)
	q := db.New(pool)
	ctx := context.Background()
	if err := q.UpsertVolume(ctx, db.UpsertVolumeParams{UserID: testUser, VolumeName: "v"}); err != nil {
		t.Fatal(err)
	}
	tb := &davtest.LocalToolbox{Dir: t.TempDir()}
	vol := filepath.Join(tb.Dir, filepath.FromSlash(volRoot))
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	h := &dav.Handler{
		Prefix: "/dav",
		Locks:  &dav.Locks{},
		Authenticate: func(r *http.Request) (string, error) {
			if _, p, ok := r.BasicAuth(); ok && p == testKey {
				return testUser, nil
			}
			return "", errUnauthorized
		},
		Open: func(ctx context.Context, user string, lease bool) (*dav.Volume, func(), error) {
			return &dav.Volume{
				TB:    tb,
				Root:  volRoot,
				Props: &dav.PropStore{Pool: pool, UserID: user},
				Quota: &dav.Quota{Queries: q, UserID: user, Limit: quota, MaxAge: time.Minute,
					Measure: func(context.Context) (int64, error) { return davtest.DiskUsage(vol) }},
			}, func() {}, nil
		},
		Fail: func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusInternalServerError
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe): // the API's classify answers 413
				status = http.StatusRequestEntityTooLarge
			case errors.Is(err, errUnauthorized):
				status = http.StatusUnauthorized
			case errors.Is(err, dav.ErrBadPath):
				status = http.StatusBadRequest
			case errors.Is(err, dav.ErrTooManyLocks): // the API's volumeError answers 429
				status = http.StatusTooManyRequests
			case errors.Is(err, dav.ErrQuotaExceeded):
				status = http.StatusInsufficientStorage
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "x", "message": err.Error()}})
		},
	}
	mux := http.NewServeMux()
	mux.Handle("/dav/", h)
	mux.Handle("/dav", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &davServer{URL: srv.URL + "/dav/", TB: tb, Vol: vol, Q: q}
}

var errUnauthorized = errors.New("unauthorized")
