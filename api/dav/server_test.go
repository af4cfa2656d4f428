package dav_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api/dav"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/davlock"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/sandboxfs"
	"github.com/threadbox/threadbox/volume"
)

const (
	testUser = "alice"
	testKey  = "alice-key"
)

// davServer is the WebDAV handler over a real (emulated) Daytona sandbox's
// volume, with real PostgreSQL dead properties and quota accounting. Only
// the files sandbox's lifecycle is left out: the Opener hands over the
// running sandbox directly.
type davServer struct {
	URL   string
	SB    *testenv.Sandbox
	Files sandboxfs.FS // the volume, for looking behind the handler's back
	Pool  *pgxpool.Pool
	Q     *db.Queries
	v     *volume.Volume
}

// directOpener opens one volume without a sandbox lifecycle.
type directOpener struct{ v *volume.Volume }

func (o directOpener) Use(ctx context.Context, _ string, _ volume.UseOptions, fn func(context.Context, *volume.Volume) error) error {
	return fn(ctx, o.v)
}

func newDavServer(t *testing.T, quota int64) *davServer {
	t.Helper()
	pool, _ := testenv.Database(t)
	q := db.New(pool)
	ctx := context.Background()
	require.NoError(t, q.UpsertVolume(ctx, db.UpsertVolumeParams{UserID: testUser, VolumeName: "v"}))
	sb := testenv.NewSandbox(t)
	files := sandboxfs.FS{TB: sb.Toolbox, Root: entity.VolumeMountPath}
	v := &volume.Volume{
		Files: files,
		Props: &volume.Props{Pool: pool, UserID: testUser},
		Quota: &volume.Quota{Pool: pool, UserID: testUser, Limit: quota, MaxAge: time.Minute,
			Measure: func(ctx context.Context) (int64, error) { return volume.Measure(ctx, files) }},
	}
	s := &davServer{SB: sb, Files: files, Pool: pool, Q: q, v: v}
	s.URL = s.serve(t)
	return s
}

// serve starts a WebDAV handler over the server's volume with its own lock
// store (a replica of the API, sharing only the database) and returns its
// /dav/ URL.
func (s *davServer) serve(t *testing.T) string {
	h := &dav.Handler{Prefix: "/dav", Locks: &davlock.Store{Pool: s.Pool}, Volumes: directOpener{s.v}}
	// The API authenticates before the handler runs; so does this stand-in.
	authed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, p, ok := r.BasicAuth(); ok && p == testKey {
			r = r.WithContext(auth.WithPrincipal(r.Context(), auth.Principal{UserID: testUser}))
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(authed)
	t.Cleanup(srv.Close)
	return srv.URL + "/dav/"
}

// put writes a file into the volume directly (not through WebDAV).
func (s *davServer) put(t *testing.T, p string, data []byte) {
	t.Helper()
	require.NoError(t, s.Files.Upload(context.Background(), "/"+strings.TrimPrefix(p, "/"), strings.NewReader(string(data))))
}

// read returns a file of the volume, read directly.
func (s *davServer) read(t *testing.T, p string) []byte {
	t.Helper()
	r, err := s.Files.Download(context.Background(), "/"+strings.TrimPrefix(p, "/"), 0, -1)
	require.NoError(t, err, p)
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

// exists reports whether p is in the volume.
func (s *davServer) exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := s.Files.Stat(context.Background(), "/"+strings.TrimPrefix(p, "/"))
	return err == nil
}

// names lists a directory of the volume directly, spools included.
func (s *davServer) names(t *testing.T, dir string) []string {
	t.Helper()
	list, err := s.Files.List(context.Background(), path.Clean("/"+dir))
	require.NoError(t, err)
	out := make([]string, 0, len(list))
	for _, fi := range list {
		out = append(out, fi.Name)
	}
	return out
}

// exec runs a shell command in the sandbox (cwd: the volume).
func (s *davServer) exec(t *testing.T, cmd string) {
	t.Helper()
	res, err := s.SB.Toolbox.Exec(context.Background(), daytonaExec("cd "+entity.VolumeMountPath+" && "+cmd))
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, res.Output)
}

func daytonaExec(cmd string) daytona.ExecRequest {
	return daytona.ExecRequest{Command: cmd, Timeout: time.Minute}
}
