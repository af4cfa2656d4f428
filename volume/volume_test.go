package volume_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/sandboxfs"
	"github.com/threadbox/threadbox/volume"
)

const user = "vol-user"

// rig is one user's volume in a real (emulated) Daytona sandbox, with its
// quota and reservations in a real PostgreSQL database.
type rig struct {
	sb    *testenv.Sandbox
	pool  *pgxpool.Pool
	files sandboxfs.FS
	limit int64
}

func newRig(t *testing.T, limit int64) *rig {
	t.Helper()
	pool, _ := testenv.Database(t)
	require.NoError(t, db.New(pool).UpsertVolume(context.Background(), db.UpsertVolumeParams{UserID: user, VolumeName: "v"}))
	sb := testenv.NewSandbox(t)
	return &rig{sb: sb, pool: pool, files: sandboxfs.FS{TB: sb.Toolbox, Root: entity.VolumeMountPath}, limit: limit}
}

// volume is a fresh per-request view, as volume.Service hands out.
func (r *rig) volume() *volume.Volume {
	return &volume.Volume{Files: r.files, Quota: &volume.Quota{Pool: r.pool, UserID: user, Limit: r.limit, MaxAge: time.Minute,
		Measure: func(ctx context.Context) (int64, error) { return volume.Measure(ctx, r.files) }}}
}

// Use makes the rig a volume.Opener (for the sweep).
func (r *rig) Use(ctx context.Context, _ string, _ volume.UseOptions, fn func(context.Context, *volume.Volume) error) error {
	return fn(ctx, r.volume())
}

func (r *rig) read(t *testing.T, p string) (string, bool) {
	t.Helper()
	rd, err := r.files.Download(context.Background(), p, 0, -1)
	if err != nil {
		return "", false
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	require.NoError(t, err)
	return string(b), true
}

// names lists a directory of the volume, hidden files included.
func (r *rig) names(t *testing.T, dir string) []string {
	t.Helper()
	list, err := r.files.List(context.Background(), dir)
	require.NoError(t, err)
	var out []string
	for _, fi := range list {
		out = append(out, fi.Name)
	}
	return out
}

func (r *rig) reservations(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, r.pool.QueryRow(context.Background(), `SELECT count(*) FROM volume_reservations`).Scan(&n))
	return n
}

// fault is how a toolbox request of a commit is interrupted.
type fault string

const (
	// failed: the toolbox answers 500 without acting.
	failed fault = "5xx"
	// lost: the toolbox acts, and its answer is lost (500).
	lost fault = "lost-answer"
	// hangup: the client hangs up just as the request goes out.
	hangup fault = "hang-up"
	// outage: this request and every later one fail until the write
	// returns; only the sweep can finish the job.
	outage fault = "outage"
)

// stepper injects f at the k-th toolbox request after the spool upload,
// that is, at the k-th step of the commit.
type stepper struct {
	mu       sync.Mutex
	uploaded bool
	seen     int
	k        int
	f        fault
	cancel   context.CancelFunc
	steps    []string
	down     bool
}

func (s *stepper) intercept(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	step := r.Method + " " + testenv.Route(r.URL.Path)
	if !s.uploaded {
		s.uploaded = step == "POST files/upload"
		return false
	}
	s.seen++
	s.steps = append(s.steps, step+" "+r.URL.RawQuery)
	if s.down {
		http.Error(w, "outage", http.StatusServiceUnavailable)
		return true
	}
	if s.seen != s.k {
		return false
	}
	switch s.f {
	case failed:
		http.Error(w, "injected", http.StatusInternalServerError)
		return true
	case lost:
		next.ServeHTTP(httptest.NewRecorder(), r)
		http.Error(w, "injected after acting", http.StatusInternalServerError)
		return true
	case hangup:
		s.cancel()
		return false
	case outage:
		s.down = true
		http.Error(w, "outage", http.StatusServiceUnavailable)
		return true
	}
	return false
}

// A replace interrupted at any step of its commit, in any way, leaves the
// old file or the new one at the target, never neither and never a mix;
// what a writer could not finish (an outage until it gave up) is finished
// by the sweep. Every step of the commit is hit: the number of steps is
// taken from an uninterrupted replace.
func TestReplaceLeavesOldOrNewAtEveryStep(t *testing.T) {
	r := newRig(t, 1<<30)
	ctx := context.Background()
	const target = "/docs/report.txt"
	oldBody, newBody := strings.Repeat("old ", 1000), strings.Repeat("new!", 1500)

	clean := &stepper{k: -1}
	r.sb.Calls.Intercept(clean.intercept)
	require.NoError(t, r.files.Upload(ctx, target, strings.NewReader(oldBody)))
	clean.uploaded = false
	_, err := r.volume().Put(ctx, target, strings.NewReader(newBody), int64(len(newBody)))
	require.NoError(t, err)
	steps := len(clean.steps)
	require.GreaterOrEqual(t, steps, 3, "a replace moves the old file aside, the new one in, and deletes the old: %v", clean.steps)

	for _, f := range []fault{failed, lost, hangup, outage} {
		for k := 1; k <= steps; k++ {
			t.Run(string(f)+"/step-"+string(rune('0'+k)), func(t *testing.T) {
				require.NoError(t, r.files.Upload(ctx, target, strings.NewReader(oldBody)))
				reqCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				s := &stepper{k: k, f: f, cancel: cancel}
				r.sb.Calls.Intercept(s.intercept)
				_, err := r.volume().Put(reqCtx, target, strings.NewReader(newBody), int64(len(newBody)))
				r.sb.Calls.Intercept(nil)
				got, there := r.read(t, target)
				if f != outage {
					require.True(t, there, "the target is there after %s at step %d (%v)", f, k, s.steps)
					require.Contains(t, []string{oldBody, newBody}, got, "old or new after %s at step %d", f, k)
					if err == nil {
						require.Equal(t, newBody, got, "a write reported done is there")
					}
				} else if err == nil {
					require.Equal(t, newBody, got)
				}
				// Whatever the writer left, the sweep settles once its
				// reservation has expired.
				_, serr := volume.Sweep(ctx, r.pool, r, time.Now().Add(time.Hour))
				require.NoError(t, serr)
				got, there = r.read(t, target)
				require.True(t, there, "after the sweep: %s at step %d (%v)", f, k, s.steps)
				require.Contains(t, []string{oldBody, newBody}, got)
				if err == nil {
					require.Equal(t, newBody, got)
				}
				require.Equal(t, []string{"report.txt"}, r.names(t, "/docs"), "no spool or old copy left behind")
				require.Zero(t, r.reservations(t))
			})
		}
	}
}

// Ten writers at the quota's edge, with and without a Content-Length,
// never take the volume past its quota together: each reserves its bytes
// before its first one is sent, so they cannot all count the same free
// space.
func TestConcurrentWritesNeverExceedTheQuota(t *testing.T) {
	const limit, size = 1 << 20, 300_000
	r := newRig(t, limit)
	ctx := context.Background()
	require.NoError(t, r.files.Upload(ctx, "/base.bin", bytes.NewReader(make([]byte, 100_000))))
	var wg sync.WaitGroup
	results := make([]error, 10)
	for i := range results {
		wg.Go(func() {
			announced := int64(size)
			var body io.Reader = bytes.NewReader(make([]byte, size))
			if i%2 == 1 {
				announced, body = -1, io.MultiReader(body) // no length: reserved as it streams
			}
			_, results[i] = r.volume().Put(ctx, "/w/"+string(rune('a'+i)), body, announced)
		})
	}
	wg.Wait()
	stored := 0
	for _, err := range results {
		if err == nil {
			stored++
		} else {
			require.ErrorIs(t, err, volume.ErrQuotaExceeded)
		}
	}
	require.LessOrEqual(t, 100_000+stored*size, limit, "never past the quota: %v", results)
	require.GreaterOrEqual(t, stored, 1, "what fits is written: %v", results)
	used, err := volume.Measure(ctx, r.files)
	require.NoError(t, err)
	require.LessOrEqual(t, used, int64(limit))
	u, err := db.New(r.pool).VolumeUsage(ctx, user)
	require.NoError(t, err)
	require.Equal(t, used, u.UsedBytes, "the counted usage is the real one")
	require.Zero(t, r.reservations(t), "every reservation ended")
	for _, n := range r.names(t, "/w") {
		require.False(t, volume.IsSpool(n), "no spool left: %s", n)
	}
}

// A measurement counts the user's files only: the hidden files of writes in
// flight are counted by their reservations, and a spool idle for a day
// (left by a writer that died before reservations tracked it, or by a
// failed cleanup) is removed.
func TestMeasureSkipsHiddenFilesAndRemovesStaleSpools(t *testing.T) {
	r := newRig(t, 1<<30)
	ctx := context.Background()
	res, err := r.sb.Toolbox.Exec(ctx, daytona.ExecRequest{Timeout: time.Minute, Command: `cd ` + entity.VolumeMountPath + ` &&
		head -c 1000 /dev/zero > kept.bin &&
		head -c 5000 /dev/zero > .tbpart-aaaa-fresh && head -c 7000 /dev/zero > .tbold-bbbb-aside &&
		head -c 9000 /dev/zero > .tbpart-cccc-stale && touch -d '2 days ago' .tbpart-cccc-stale`})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, res.Output)
	used, err := volume.Measure(ctx, r.files)
	require.NoError(t, err)
	require.EqualValues(t, 1000, used, "only the user's own files count")
	names := r.names(t, "/")
	require.NotContains(t, names, ".tbpart-cccc-stale", "a spool idle for a day is removed")
	require.Contains(t, names, ".tbpart-aaaa-fresh", "a recent spool may belong to a write in flight")
	require.Contains(t, names, ".tbold-bbbb-aside", "an old file moved aside is the sweep's to settle, never removed by age")
}
