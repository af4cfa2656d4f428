// Package pathfuzz_test fuzzes every route that takes a path from a client
// and checks that no resolved path leaves the area the route serves.
//
// `go test ./tests/pathfuzz` runs the seed corpus (the f.Add seeds and
// testdata/fuzz/FuzzClientPaths) as a regular test; explore with
//
//	go test ./tests/pathfuzz -run '^$' -fuzz FuzzClientPaths -fuzztime 60s
package pathfuzz_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/dav"
	"github.com/threadbox/threadbox/api/files"
	"github.com/threadbox/threadbox/api/threads"
	"github.com/threadbox/threadbox/api/uploads"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/davlock"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/sandboxfs"
	"github.com/threadbox/threadbox/skills"
	st "github.com/threadbox/threadbox/skills/skilltest"
	"github.com/threadbox/threadbox/volume"
)

const user = "fuzz-user"

// recorder is the toolbox of the files sandbox as the routes reach it: every
// path a route resolved arrives here, is recorded, and is carried out by the
// real (emulated) toolbox.
type recorder struct {
	tb *daytona.Toolbox

	mu      sync.Mutex
	touched []touch
}

// touch is one path a route sent to the toolbox; changes says the call
// writes, deletes or moves it.
type touch struct {
	op      string
	path    string
	changes bool
}

func (r *recorder) note(op string, changes bool, paths ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range paths {
		r.touched = append(r.touched, touch{op, p, changes})
	}
}

func (r *recorder) take() []touch {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.touched
	r.touched = nil
	return out
}

func (r *recorder) List(ctx context.Context, dir string) ([]daytona.FileInfo, error) {
	r.note("list", false, dir)
	return r.tb.List(ctx, dir)
}

func (r *recorder) Stat(ctx context.Context, p string) (daytona.FileInfo, error) {
	r.note("stat", false, p)
	return r.tb.Stat(ctx, p)
}

func (r *recorder) Download(ctx context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	r.note("download", false, p)
	return r.tb.Download(ctx, p, offset, length)
}

func (r *recorder) Upload(ctx context.Context, p string, rd io.Reader) error {
	r.note("upload", true, p)
	return r.tb.Upload(ctx, p, rd)
}

func (r *recorder) Delete(ctx context.Context, p string, recursive bool) error {
	r.note("delete", true, p)
	return r.tb.Delete(ctx, p, recursive)
}

func (r *recorder) Move(ctx context.Context, from, to string) error {
	r.note("move", true, from, to)
	return r.tb.Move(ctx, from, to)
}

func (r *recorder) Mkdir(ctx context.Context, p string) error {
	r.note("mkdir", true, p)
	return r.tb.Mkdir(ctx, p)
}

// Exec carries the paths of the commands the volume runs (rmdir of an empty
// directory, the measurement) as single-quoted words.
func (r *recorder) Exec(ctx context.Context, req daytona.ExecRequest) (daytona.ExecResult, error) {
	changes := strings.HasPrefix(req.Command, "rmdir ")
	for _, w := range quotedWords(req.Command) {
		if strings.HasPrefix(w, "/") {
			r.note("exec", changes, w)
		}
	}
	return r.tb.Exec(ctx, req)
}

// quotedWords returns the single-quoted words of a command built with
// sandboxfs.ShellQuote.
func quotedWords(cmd string) []string {
	var out []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(cmd); i++ {
		switch {
		case !in && cmd[i] == '\'':
			in = true
			cur.Reset()
		case in && strings.HasPrefix(cmd[i:], `'\''`):
			cur.WriteByte('\'')
			i += 3
		case in && cmd[i] == '\'':
			in = false
			out = append(out, cur.String())
		case in:
			cur.WriteByte(cmd[i])
		}
	}
	return out
}

// opener hands the routes the user's volume over the recorder.
type opener struct {
	rec  *recorder
	pool *pgxpool.Pool
}

func (o opener) Use(ctx context.Context, userID string, _ volume.UseOptions, fn func(context.Context, *volume.Volume) error) error {
	fs := sandboxfs.FS{TB: o.rec, Root: entity.VolumeMountPath}
	return fn(ctx, &volume.Volume{Files: fs,
		Quota: &volume.Quota{Pool: o.pool, UserID: userID, Limit: 1 << 30, MaxAge: time.Hour,
			Measure: func(ctx context.Context) (int64, error) { return volume.Measure(ctx, fs) }},
		Props: &volume.Props{Pool: o.pool, UserID: userID}})
}

// rig is the volume routes (/v1/files, WebDAV, tus) over one emulated files
// sandbox, with a canary outside the volume.
type rig struct {
	rec    *recorder
	tb     *daytona.Toolbox
	files  http.Handler
	dav    http.Handler
	tus    http.Handler
	canary string
}

func newRig(f *testing.F) *rig {
	pool, _ := testenv.Database(f)
	sb := testenv.NewSandbox(f)
	rec := &recorder{tb: sb.Toolbox}
	o := opener{rec: rec, pool: pool}
	authed := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), auth.Principal{UserID: user})))
		})
	}
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) { apierr.Respond(c.Response(), c.Request(), err, slogDiscard()) }
	(&files.Routes{Volumes: o, MaxBodyBytes: 1 << 20, QuotaBytes: 1 << 30, Logger: slogDiscard()}).Register(e.Group("/v1"))
	up, err := uploads.New(uploads.Config{Dir: f.TempDir(), BasePath: "/v1/uploads/", QuotaBytes: 1 << 30,
		SpoolTTL: time.Hour, Queries: db.New(pool), Logger: slogDiscard(), Volumes: o})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(up.Close)
	r := &rig{rec: rec, tb: sb.Toolbox, files: authed(e),
		dav:    authed(&dav.Handler{Prefix: "/dav", Locks: &davlock.Store{Pool: pool}, Volumes: o}),
		tus:    authed(http.StripPrefix("/v1/uploads", up.Handler())),
		canary: entity.HomeDir + "/canary"}
	if err := sb.Toolbox.Upload(context.Background(), r.canary, strings.NewReader("canary")); err != nil {
		f.Fatal(err)
	}
	return r
}

func (r *rig) serve(h http.Handler, req *http.Request) {
	if req != nil {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func request(method, target string, body []byte, hdr map[string]string) *http.Request {
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	u, err := url.Parse(target)
	if err != nil {
		return nil
	}
	req.URL = u
	req.RequestURI = target
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return req
}

// davRequest sends a WebDAV request for the decoded path p (what the
// handler sees in URL.Path, however the client encoded it).
func davRequest(method, p string, hdr map[string]string, body []byte) *http.Request {
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	req.URL = &url.URL{Path: "/dav/" + p}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return req
}

// checkTouched fails when a route sent the toolbox a path outside the
// volume, an unclean one, or changed the volume's root itself.
func checkTouched(t *testing.T, route, raw string, touched []touch) {
	t.Helper()
	root := entity.VolumeMountPath
	for _, tc := range touched {
		p := tc.path
		if p != path.Clean(p) || strings.IndexByte(p, 0) >= 0 {
			t.Fatalf("%s with %q sent an unclean path to the toolbox: %s %q", route, raw, tc.op, p)
		}
		if p != root && !strings.HasPrefix(p, root+"/") {
			t.Fatalf("%s with %q left the volume: %s %q", route, raw, tc.op, p)
		}
		if tc.changes && p == root {
			t.Fatalf("%s with %q changed the volume root: %s", route, raw, tc.op)
		}
	}
}

// checkThreadPath checks the rule of every thread file route
// (threads.FilePath).
func checkThreadPath(t *testing.T, raw string) {
	t.Helper()
	for _, changes := range []bool{false, true} {
		p, err := threads.FilePath(raw, changes)
		if err != nil {
			continue
		}
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.IndexByte(p, 0) >= 0 || len(p) > clientpath.MaxPathBytes {
			t.Fatalf("thread path %q resolved to an unclean path %q", raw, p)
		}
		if !strings.HasPrefix(raw, "/") && p != entity.HomeDir && !strings.HasPrefix(p, entity.HomeDir+"/") {
			t.Fatalf("relative thread path %q left the home: %q", raw, p)
		}
		protected := p == "/" || p == "/home" || p == entity.HomeDir || p == entity.VolumeMountPath
		if changes && protected {
			t.Fatalf("thread path %q may change %q", raw, p)
		}
		if rel, ok := strings.CutPrefix(p, entity.VolumeMountPath+"/"); ok {
			for _, seg := range strings.Split(rel, "/") {
				if volume.IsSpool(seg) {
					t.Fatalf("thread path %q names a hidden file of the volume: %q", raw, p)
				}
			}
		}
	}
}

// checkSkillEntry puts raw as an entry name in a skill archive of each
// format: whatever Parse accepts stays inside the skill's folder once
// installed under entity.SkillsDir.
func checkSkillEntry(t *testing.T, raw string) {
	t.Helper()
	md := st.SkillMD("name: fuzz-skill\ndescription: fuzzing entry names")
	body := "x"
	if strings.HasSuffix(raw, "/") {
		body = "" // a directory entry carries no data
	}
	for _, build := range []func(...st.Entry) []byte{st.Zip, st.TarGz} {
		archive := buildArchive(build, st.File("SKILL.md", md), st.File(raw, body))
		if archive == nil {
			continue
		}
		b, err := skills.Parse(archive, skills.DefaultLimits())
		if err != nil {
			continue
		}
		dir := path.Join(entity.SkillsDir, b.Manifest.Name)
		for _, file := range b.Files {
			p := file.Path
			if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p {
				t.Fatalf("skill entry %q accepted as an unclean path %q", raw, p)
			}
			if full := path.Join(dir, p); !strings.HasPrefix(full, dir+"/") {
				t.Fatalf("skill entry %q installs outside the skill's folder: %q", raw, full)
			}
		}
	}
}

// buildArchive builds an archive, or nil when the format cannot hold such
// an entry name (the writers refuse it; arbitrary archive bytes are
// skills.FuzzParse's concern).
func buildArchive(build func(...st.Entry) []byte, entries ...st.Entry) (out []byte) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	return build(entries...)
}

// FuzzClientPaths sends raw as the path of every path-taking route: thread
// file routes (their one rule, threads.FilePath), /v1/files (GET, PUT,
// DELETE, move from and to), WebDAV (request path and Destination of MOVE
// and COPY, PUT, MKCOL, DELETE, PROPFIND), tus (the path metadata, pushed
// into the volume on completion) and skill archive entry names. No path
// that reaches the toolbox may leave the volume or change its root, and a
// canary outside the volume must survive.
func FuzzClientPaths(f *testing.F) {
	for _, seed := range []string{
		"a.txt", "dir/sub/f", "/abs/f", "../etc/passwd", "a/../../x", "..", ".", "/", "",
		"%2e%2e/x", "..%2fx", "a%00b", "x\x00y", "./././a", "a//b///c", "/home/daytona", "/home",
		"volume", "volume/../../x", "/home/daytona/volume/../canary", ".tbpart-x", "d/.tbold-1-x",
		strings.Repeat("n", 256), strings.Repeat("a/", 2100), "é/ü", "a\\..\\b", "~/x", "a b/c?d#e",
	} {
		f.Add(seed)
	}
	r := newRig(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw string) {
		checkThreadPath(t, raw)
		checkSkillEntry(t, raw)

		// Fixtures the moves start from, written behind the routes' back.
		_ = r.tb.Upload(ctx, entity.VolumeMountPath+"/fz/src", strings.NewReader("src"))
		r.rec.take()

		q := url.QueryEscape(raw)
		for _, req := range []*http.Request{
			request(http.MethodGet, "/v1/files?path="+q, nil, nil),
			request(http.MethodPut, "/v1/files?path="+q, []byte("x"), nil),
			request(http.MethodDelete, "/v1/files?path="+q+"&recursive=true", nil, nil),
			request(http.MethodDelete, "/v1/files?path="+q, nil, nil),
		} {
			r.serve(r.files, req)
		}
		for _, mv := range []map[string]string{{"from": raw, "to": "fz/dst"}, {"from": "fz/src", "to": raw}} {
			b, _ := json.Marshal(mv)
			r.serve(r.files, request(http.MethodPost, "/v1/files/move", b, map[string]string{"Content-Type": "application/json"}))
		}
		checkTouched(t, "/v1/files", raw, r.rec.take())

		for _, req := range []*http.Request{
			davRequest("PROPFIND", raw, map[string]string{"Depth": "1"}, nil),
			davRequest(http.MethodPut, raw, nil, []byte("x")),
			davRequest(http.MethodGet, raw, nil, nil),
			davRequest("MKCOL", raw, nil, nil),
			davRequest("COPY", "fz/src", map[string]string{"Destination": "/dav/" + raw}, nil),
			davRequest("MOVE", raw, map[string]string{"Destination": "/dav/fz/moved"}, nil),
			davRequest("MOVE", "fz/src", map[string]string{"Destination": "http://h/dav/" + raw}, nil),
			davRequest(http.MethodDelete, raw, nil, nil),
		} {
			r.serve(r.dav, req)
		}
		checkTouched(t, "WebDAV", raw, r.rec.take())

		create := request(http.MethodPost, "/v1/uploads/", nil, map[string]string{"Tus-Resumable": "1.0.0",
			"Upload-Length": "1", "Upload-Metadata": "path " + base64.StdEncoding.EncodeToString([]byte(raw))})
		w := httptest.NewRecorder()
		r.tus.ServeHTTP(w, create)
		if loc := w.Header().Get("Location"); w.Code == http.StatusCreated && loc != "" {
			u, _ := url.Parse(loc)
			r.serve(r.tus, request(http.MethodPatch, u.Path, []byte("x"), map[string]string{"Tus-Resumable": "1.0.0",
				"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
		}
		checkTouched(t, "tus", raw, r.rec.take())

		if _, err := r.tb.Stat(ctx, r.canary); err != nil {
			t.Fatalf("the canary outside the volume is gone after %q: %v", raw, err)
		}
	})
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
