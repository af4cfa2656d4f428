// Package fault_test is the fault suite (issue 13): the built threadbox
// binary runs as separate processes — the Daytona emulator, two workers, two
// serves — beside a Temporal dev server, a PostgreSQL of the suite's own and
// an S3 gateway; while a driver runs thread and files lifecycles through the
// public API, an injector SIGKILLs workers and serves, takes the emulator
// down and brings it back with its state, restarts PostgreSQL and runs the
// emulator with injected faults. At the end it checks that every lifecycle
// converged: one sandbox per live thread, none per deleted one, nothing
// untracked after a reconciler pass, every byte written readable, no failed
// workflow, no activity stuck retrying; and it prints how late auto-stops and
// auto-deletes fired, from the ledger.
//
// The small version runs in `go test ./...`; THREADBOX_FAULT_LONG=1 (make
// fault) runs the long one whose figures are in docs/RELIABILITY.md.
package fault_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/internal/testenv"
	"github.com/threadbox/threadbox/workflows"
)

// size is what one run does.
type size struct {
	name             string
	threadLifecycles int // thread lifecycles the driver runs (at least)
	concurrency      int // of thread lifecycles
	residents        int // threads kept alive to the end (used now and then)
	users            int
	davPuts          int // per user
	tusUploads       int // in all; each kills the serve it started on
	tusSize          int
	// faults the injector schedules (in random order, spread over the run)
	workerKills, serveKills, emulatorOutages, pgRestarts, faultPhases int
	gap                                                               time.Duration // between injections
	faultPhase                                                        time.Duration // how long the emulator runs with faults
	deadline                                                          time.Duration // for the whole driver
}

var (
	small = size{name: "small", threadLifecycles: 8, concurrency: 4, residents: 2, users: 2, davPuts: 3, tusUploads: 1, tusSize: 3 << 20,
		workerKills: 3, serveKills: 1, emulatorOutages: 1, pgRestarts: 1, faultPhases: 1,
		gap: 6 * time.Second, faultPhase: 8 * time.Second, deadline: 6 * time.Minute}
	long = size{name: "long", threadLifecycles: 210, concurrency: 12, residents: 8, users: 4, davPuts: 25, tusUploads: 8, tusSize: 6 << 20,
		workerKills: 24, serveKills: 8, emulatorOutages: 5, pgRestarts: 5, faultPhases: 4,
		gap: 11 * time.Second, faultPhase: 20 * time.Second, deadline: 30 * time.Minute}
)

// The lifecycle intervals (seconds, as internal/testenv uses).
const (
	autoStop   = 3 * time.Second
	autoDelete = 6 * time.Second
	filesStop  = 3 * time.Second
	grace      = 5 * time.Second // THREADBOX_RECONCILE_GRACE
)

// faultEnv is the emulator's environment while a fault phase runs.
var faultEnv = []string{
	"EMULATOR_FAIL_5XX_RATE=0.2", "EMULATOR_FAIL_409_RATE=0.1", "EMULATOR_FAIL_429_RATE=0.05", "EMULATOR_LATENCY=50ms",
}

type system struct {
	t        *testing.T
	pg       *testenv.PostgresServer
	pool     *pgxpool.Pool
	temporal client.Client
	emulator *proc
	emuEnv   []string
	workers  []*proc
	serves   []*proc
	bases    []string
	gateway  *daytona.Gateway
	s3       testenv.S3Server
	queue    string
	serveMu  sync.Mutex // one serve down at a time

	mu      sync.Mutex
	counts  map[string]int // injections done, by kind
	windows []window
}

// window is when an injected fault was in force: from the kill or stop to
// the moment the part was back.
type window struct {
	kind     string
	from, to time.Time
}

// count records an injection of kind that began at from and is over now.
func (s *system) count(kind string, from time.Time) {
	s.mu.Lock()
	s.counts[kind]++
	s.windows = append(s.windows, window{kind: kind, from: from, to: time.Now()})
	s.mu.Unlock()
}

func TestFaultSuite(t *testing.T) {
	sz := small
	if os.Getenv("THREADBOX_FAULT_LONG") == "1" {
		sz = long
	}
	ctx := context.Background()
	began := time.Now()
	sys := startSystem(t, sz)
	keys := map[string]string{}
	var users []string
	for i := range sz.users {
		u := fmt.Sprintf("fault-user-%d", i)
		k, _, err := auth.NewStore(db.New(sys.pool)).Create(ctx, u, false)
		if err != nil {
			t.Fatalf("api key: %v", err)
		}
		users, keys[u] = append(users, u), k
	}
	d := newDriver(t, sys.bases)
	t.Logf("fault suite (%s): system up in %s; %d thread lifecycles at %d at a time, %d residents, %d users",
		sz.name, time.Since(began).Round(time.Second), sz.threadLifecycles, sz.concurrency, sz.residents, sz.users)

	runCtx, cancelRun := context.WithTimeout(ctx, sz.deadline)
	defer cancelRun()
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		sys.inject(runCtx, sz)
	}()

	var wg sync.WaitGroup
	// Residents: created first, used now and then, alive at the end.
	var residents []threadRec
	for i := range sz.residents {
		residents = append(residents, threadRec{user: users[i%len(users)], id: fmt.Sprintf("resident-%d", i)})
	}
	for _, r := range residents {
		wg.Add(1)
		d.lifecycleStarted("resident thread")
		go func() {
			defer wg.Done()
			d.lifecycleDone("resident thread", d.resident(runCtx, keys[r.user], r.user, r.id, chaosDone), "resident "+r.id)
		}()
	}
	// Thread lifecycles: at least the planned number, and on until the
	// injector is done, so every fault lands under load.
	var n int
	var nmu sync.Mutex
	nextThread := func() (int, bool) {
		nmu.Lock()
		defer nmu.Unlock()
		select {
		case <-chaosDone:
			if n >= sz.threadLifecycles {
				return 0, false
			}
		default:
		}
		if runCtx.Err() != nil {
			return 0, false
		}
		n++
		return n, true
	}
	for w := range sz.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := nextThread()
				if !ok {
					return
				}
				u := users[(i+w)%len(users)]
				id := fmt.Sprintf("life-%d", i)
				d.lifecycleStarted("thread")
				d.lifecycleDone("thread", d.threadLifecycle(runCtx, keys[u], u, id, 90*time.Second), id)
			}
		}()
	}
	// Files: WebDAV PUTs per user, and tus uploads resumed after a kill.
	for ui, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range sz.davPuts {
				d.lifecycleStarted("WebDAV PUT")
				d.lifecycleDone("WebDAV PUT", d.davPut(runCtx, keys[u], u, fmt.Sprintf("fault-dav-%s-%d.bin", u, j), 64<<10+j), u)
				sleepCtx(runCtx, time.Duration(rand.IntN(4000))*time.Millisecond)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := ui; j < sz.tusUploads; j += len(users) {
				sleepCtx(runCtx, time.Duration(rand.IntN(int(sz.gap*2/time.Millisecond)))*time.Millisecond)
				d.lifecycleStarted("tus upload")
				d.lifecycleDone("tus upload", d.tusUpload(runCtx, keys[u], u, fmt.Sprintf("fault-tus-%s-%d.bin", u, j), sz.tusSize+j, j%2, func(i int) {
					sys.killServe(i, "tus")
				}), u)
			}
		}()
	}
	wg.Wait()
	cancelRun() // stops the injector if the driver ran out of time
	<-chaosDone
	driven := time.Since(began)

	// Settle: everything up, no faults, timers given time to fire.
	sys.healAll(t)
	settle := autoStop + autoDelete + 10*time.Second
	time.Sleep(settle)

	checkCtx, cancelCheck := context.WithTimeout(ctx, 5*time.Minute)
	defer cancelCheck()
	rep := &report{size: sz, driven: driven}
	sys.mu.Lock()
	rep.injected = maps(sys.counts)
	sys.mu.Unlock()
	for _, p := range append(append([]*proc{sys.emulator}, sys.workers...), sys.serves...) {
		_, un := p.counts()
		rep.selfExits += un
	}
	d.mu.Lock()
	rep.started, rep.finished, rep.causes = maps(d.started), maps(d.finished), maps(d.causes)
	threads := make([]threadRec, 0, len(d.threads))
	for _, r := range d.threads {
		threads = append(threads, *r)
	}
	d.mu.Unlock()
	threads = append(threads, residents...)
	rep.requests, rep.retried, rep.retries, rep.gaveUp = d.requests.Load(), d.retried.Load(), d.retries.Load(), d.gaveUp.Load()

	sys.checkSandboxes(checkCtx, t, d, keys, threads, rep)
	sys.checkSpool(checkCtx, t, rep)
	rep.filesChecked, rep.lostFiles, rep.lostDetail = d.readBack(checkCtx, keys)
	for _, p := range rep.lostDetail {
		t.Errorf("lost bytes: %s", p)
	}
	sys.checkWorkflows(checkCtx, t, rep)
	sys.lateness(checkCtx, t, rep)
	for kind, n := range rep.started {
		if rep.finished[kind] != n {
			t.Errorf("%d %s lifecycles started, %d completed", n, kind, rep.finished[kind])
		}
	}
	if rep.gaveUp > 0 {
		t.Errorf("%d requests still failed after %d attempts", rep.gaveUp, maxAttempts)
	}
	d.mu.Lock()
	rep.errors500 = len(d.errors500)
	for _, e := range d.errors500 {
		t.Errorf("answered 500 (an outage must be a 503 with its code): %s", e)
	}
	d.mu.Unlock()
	if sz.name == "long" && (rep.injected["worker-kill"] < 20 || rep.finished["thread"] < 200) {
		t.Errorf("the long run must do at least 20 worker kills and 200 thread lifecycles: %v, %d lifecycles", rep.injected, rep.finished["thread"])
	}
	out := rep.String()
	t.Log("\n" + out)
	if p := os.Getenv("THREADBOX_FAULT_REPORT"); p != "" {
		_ = os.WriteFile(p, []byte(out), 0o644)
	}
	if t.Failed() {
		for _, p := range append(append([]*proc{sys.emulator}, sys.workers...), sys.serves...) {
			t.Logf("--- %s log (tail)\n%s", p.name, p.tail(40))
		}
	}
}

func maps[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// resident keeps a thread alive to the end: created, then written to every
// few seconds (sometimes after it stopped or was auto-deleted) until the
// injector is done.
func (d *driver) resident(ctx context.Context, key, user, thread string, until <-chan struct{}) error {
	body := []byte(`{"thread_id":"` + thread + `"}`)
	a, err := d.call(ctx, key, -1, "POST", "/v1/threads", body, map[string]string{"Content-Type": "application/json"})
	if err := expect(a, err, "create "+thread, 200, 201); err != nil {
		return err
	}
	for i := 0; ; i++ {
		if err := d.execWrite(ctx, key, user, thread, fmt.Sprintf("r-%d.txt", i)); err != nil {
			return err
		}
		select {
		case <-until:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(1000+rand.IntN(12000)) * time.Millisecond):
		}
	}
}

func startSystem(t *testing.T, sz size) *system {
	t.Helper()
	ctx := context.Background()
	bin := testenv.Binary(t)
	s := &system{t: t, counts: map[string]int{}}
	s.pg = testenv.Postgres(t)
	pool, err := db.Open(ctx, s.pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := db.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	s.pool = pool
	s3 := testenv.S3(t)
	s.s3 = s3
	tc, taddr := testenv.Temporal(t)
	s.temporal = tc
	s.queue = "threadbox-fault"

	emuAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LOG_LEVEL=warn"}
	s.emuEnv = base
	s.emulator = newProc(t, "emulator", bin, base, "emulator", "--addr", emuAddr, "--state-dir", filepath.Join(t.TempDir(), "emulator"), "--api-key", "fault-key")
	s.emulator.addr = emuAddr
	t.Cleanup(s.emulator.cleanup)
	if err := s.emulator.start(); err != nil {
		t.Fatal(err)
	}
	apiURL := "http://" + emuAddr + "/api"
	gw, err := daytona.New(daytona.Config{APIURL: apiURL, APIKey: "fault-key"})
	if err != nil {
		t.Fatal(err)
	}
	s.gateway = gw

	common := append(slices.Clone(base),
		"DAYTONA_API_URL="+apiURL, "DAYTONA_API_KEY=fault-key",
		"DATABASE_URL="+s.pg.URL, "TEMPORAL_ADDRESS="+taddr, "TEMPORAL_TASK_QUEUE="+s.queue,
		"DAYTONA_AUTO_STOP_INTERVAL="+autoStop.String(), "DAYTONA_AUTO_DELETE_INTERVAL="+autoDelete.String(),
		"DAYTONA_FILES_SANDBOX_AUTO_STOP="+filesStop.String(),
		"THREADBOX_RECONCILE_INTERVAL=20s", "THREADBOX_RECONCILE_GRACE="+grace.String(),
		"THREADBOX_UPLOAD_S3_BUCKET="+s3.Bucket, "THREADBOX_UPLOAD_S3_ENDPOINT="+s3.Endpoint, "THREADBOX_UPLOAD_S3_REGION="+s3.Region,
		"THREADBOX_UPLOAD_S3_ACCESS_KEY="+s3.AccessKey, "THREADBOX_UPLOAD_S3_SECRET_KEY="+s3.SecretKey,
		"THREADBOX_MAX_THREADS_PER_USER=100000", "THREADBOX_MAX_RUNNING_SANDBOXES_PER_USER=100000", "THREADBOX_MAX_RUNNING_SANDBOXES=100000",
		"THREADBOX_RATE_LIMIT=1000000", "THREADBOX_RATE_BURST=1000000",
	)
	for i := range 2 {
		w := newProc(t, fmt.Sprintf("worker-%d", i), bin, common, "worker")
		t.Cleanup(w.cleanup)
		if err := w.start(); err != nil {
			t.Fatal(err)
		}
		s.workers = append(s.workers, w)
	}
	for i := range 2 {
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		env := append(slices.Clone(common), "HTTP_ADDR="+addr, "THREADBOX_UPLOAD_DIR="+t.TempDir())
		p := newProc(t, fmt.Sprintf("serve-%d", i), bin, env, "serve")
		p.addr = addr
		t.Cleanup(p.cleanup)
		if err := p.start(); err != nil {
			t.Fatalf("%v\n%s", err, p.tail(30))
		}
		s.serves = append(s.serves, p)
		s.bases = append(s.bases, "http://"+addr)
	}
	for _, b := range s.bases {
		if err := waitHealthy(ctx, b, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// inject runs the planned faults in random order, one every gap (jittered),
// until all are done or ctx ends.
func (s *system) inject(ctx context.Context, sz size) {
	var plan []string
	add := func(kind string, n int) {
		for range n {
			plan = append(plan, kind)
		}
	}
	add("worker-kill", sz.workerKills)
	add("serve-kill", sz.serveKills)
	add("emulator-outage", sz.emulatorOutages)
	add("pg-restart", sz.pgRestarts)
	add("emulator-faults", sz.faultPhases)
	rand.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	for _, kind := range plan {
		sleepCtx(ctx, sz.gap/2+time.Duration(rand.Int64N(int64(sz.gap))))
		if ctx.Err() != nil {
			return
		}
		s.t.Logf("%s inject %s", time.Now().UTC().Format("15:04:05.000"), kind)
		from := time.Now()
		switch kind {
		case "worker-kill":
			w := s.workers[rand.IntN(len(s.workers))]
			w.kill()
			sleepCtx(ctx, time.Duration(rand.IntN(2000))*time.Millisecond)
			s.restart(w)
		case "serve-kill":
			s.killServe(rand.IntN(len(s.serves)), "")
			continue // counted by killServe
		case "emulator-outage":
			s.emulator.stop()
			time.Sleep(time.Duration(3000+rand.IntN(4000)) * time.Millisecond)
			s.restart(s.emulator)
		case "pg-restart":
			mode := []string{"fast", "immediate"}[rand.IntN(2)]
			if err := s.pg.Restart(mode, time.Duration(500+rand.IntN(2500))*time.Millisecond); err != nil {
				s.t.Errorf("PostgreSQL restart: %v", err)
			}
		case "emulator-faults":
			s.emulator.stop()
			s.emulator.setEnv(append(slices.Clone(s.emuEnv), faultEnv...))
			s.restart(s.emulator)
			sleepCtx(ctx, sz.faultPhase)
			s.emulator.stop()
			s.emulator.setEnv(s.emuEnv)
			s.restart(s.emulator)
		}
		s.count(kind, from)
	}
}

func (s *system) restart(p *proc) {
	if err := p.start(); err != nil {
		s.t.Errorf("restart %s: %v\n%s", p.name, err, p.tail(30))
	}
}

// killServe SIGKILLs serve i and starts it again (one serve at a time: the
// driver always has one to go to).
func (s *system) killServe(i int, why string) {
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	s.t.Logf("%s kill serve-%d %s", time.Now().UTC().Format("15:04:05.000"), i, why)
	from := time.Now()
	s.serves[i].kill()
	time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
	s.restart(s.serves[i])
	if err := waitHealthy(context.Background(), s.bases[i], time.Minute); err != nil {
		s.t.Errorf("serve-%d after its restart: %v", i, err)
	}
	if why != "" {
		s.count("serve-kill-"+why, from)
	} else {
		s.count("serve-kill", from)
	}
}

// healAll makes sure everything runs, without faults, before the checks.
func (s *system) healAll(t *testing.T) {
	for _, p := range append(append([]*proc{s.emulator}, s.workers...), s.serves...) {
		p.mu.Lock()
		up := p.wantUp
		p.mu.Unlock()
		if !up {
			s.restart(p)
		}
	}
	for _, b := range s.bases {
		if err := waitHealthy(context.Background(), b, time.Minute); err != nil {
			t.Error(err)
		}
	}
}

// checkSandboxes runs one reconciler pass, then compares Daytona with the
// threads: a live thread with a sandbox has exactly that one, a deleted
// thread (or an auto-deleted one) none, and no threadbox sandbox is left
// that nothing tracks.
func (s *system) checkSandboxes(ctx context.Context, t *testing.T, d *driver, keys map[string]string, threads []threadRec, rep *report) {
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "fault-suite-reconcile", TaskQueue: s.queue,
	}, workflows.ReconcileWorkflowName, workflows.ReconcileWorkflowInput{GracePeriod: grace})
	if err != nil {
		t.Errorf("start reconciler pass: %v", err)
	} else {
		var res activities.ReconcileResult
		if err := run.Get(ctx, &res); err != nil {
			t.Errorf("reconciler pass: %v", err)
		}
		rep.reconciled = len(res.Deleted)
	}
	list, err := s.gateway.ListSandboxes(ctx, map[string]string{daytona.LabelManagedBy: daytona.LabelManagedByValue})
	if err != nil {
		t.Errorf("list sandboxes: %v", err)
		return
	}
	byThread := map[string][]daytona.Sandbox{}
	filesByUser := map[string]int{}
	for _, sb := range list {
		if sb.State == daytona.StateDestroyed || sb.State == daytona.StateDestroying {
			continue
		}
		rep.sandboxes++
		if th := sb.Labels[daytona.LabelThread]; th != "" {
			k := sb.Labels[daytona.LabelUser] + "/" + th
			byThread[k] = append(byThread[k], sb)
		} else {
			filesByUser[sb.Labels[daytona.LabelUser]]++
		}
	}
	tracked := map[string]bool{}
	for _, r := range threads {
		k := r.user + "/" + r.id
		tracked[k] = true
		have := byThread[k]
		if r.deleted {
			if len(have) > 0 {
				rep.leftovers += len(have)
				t.Errorf("deleted thread %s still has %d sandbox(es): %s", k, len(have), ids(have))
			}
			continue
		}
		v, status, err := d.getThread(ctx, keys[r.user], r.id)
		if err != nil || status != 200 {
			t.Errorf("live thread %s: %v %d", k, err, status)
			continue
		}
		rep.live++
		switch {
		case len(have) > 1:
			rep.duplicates += len(have) - 1
			t.Errorf("live thread %s (%s) has %d sandboxes: %s", k, v.State, len(have), ids(have))
		case v.SandboxID == nil && len(have) > 0:
			rep.leftovers += len(have)
			t.Errorf("live thread %s (%s) has no sandbox but Daytona has %s", k, v.State, ids(have))
		case v.SandboxID != nil && (len(have) != 1 || have[0].ID != *v.SandboxID):
			t.Errorf("live thread %s (%s) is served by %s but Daytona has %s", k, v.State, *v.SandboxID, ids(have))
		}
	}
	for k, have := range byThread {
		if !tracked[k] {
			rep.leftovers += len(have)
			t.Errorf("untracked sandboxes of %s after a reconciler pass: %s", k, ids(have))
		}
	}
	for u, n := range filesByUser {
		if n > 1 {
			rep.duplicates += n - 1
			t.Errorf("user %s has %d files sandboxes", u, n)
		}
	}
}

// checkSpool: every tus upload finished, so the S3 spool holds nothing (a
// serve killed mid-upload must not leave its parts behind once another
// finished the upload).
func (s *system) checkSpool(ctx context.Context, t *testing.T, rep *report) {
	objs, err := s.s3.Client.ListObjectsV2(ctx, &s3api.ListObjectsV2Input{Bucket: aws.String(s.s3.Bucket)})
	if err != nil {
		t.Errorf("list the upload spool: %v", err)
		return
	}
	rep.spoolLeft = len(objs.Contents)
	for _, o := range objs.Contents {
		t.Errorf("left in the upload spool: %s (%d bytes)", aws.ToString(o.Key), aws.ToInt64(o.Size))
	}
}

func ids(sbs []daytona.Sandbox) string {
	var out []string
	for _, sb := range sbs {
		out = append(out, sb.ID+"("+string(sb.State)+")")
	}
	return strings.Join(out, ",")
}

// checkWorkflows: none failed, timed out or was terminated; no running one
// has an activity retrying past a few attempts.
func (s *system) checkWorkflows(ctx context.Context, t *testing.T, rep *report) {
	list := func(query string) []*workflowservice.ListWorkflowExecutionsResponse {
		var pages []*workflowservice.ListWorkflowExecutionsResponse
		var token []byte
		for {
			resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
			if err != nil {
				t.Errorf("list workflows %q: %v", query, err)
				return pages
			}
			pages = append(pages, resp)
			if token = resp.NextPageToken; len(token) == 0 {
				return pages
			}
		}
	}
	for _, page := range list("ExecutionStatus = 'Failed' OR ExecutionStatus = 'TimedOut' OR ExecutionStatus = 'Terminated'") {
		for _, ex := range page.Executions {
			rep.badWorkflows++
			t.Errorf("workflow %s (%s) ended %s", ex.Execution.WorkflowId, ex.Type.Name, ex.Status)
		}
	}
	for _, page := range list("ExecutionStatus = 'Running'") {
		for _, ex := range page.Executions {
			rep.running++
			desc, err := s.temporal.DescribeWorkflowExecution(ctx, ex.Execution.WorkflowId, ex.Execution.RunId)
			if err != nil {
				t.Errorf("describe %s: %v", ex.Execution.WorkflowId, err)
				continue
			}
			for _, pa := range desc.PendingActivities {
				if pa.Attempt > 3 {
					rep.stuck++
					t.Errorf("workflow %s: activity %s on attempt %d (%s): %v", ex.Execution.WorkflowId, pa.ActivityType.GetName(), pa.Attempt, pa.State, pa.LastFailure.GetMessage())
				}
			}
		}
	}
}

// lateness reads from the ledger how long after its deadline each idle stop
// and each auto-delete happened: a stop's deadline is its row's
// stop_deadline; an auto-delete's is the stop before it plus the interval.
// Both rows are written once the Daytona call returned, so the figure is
// the timer's lateness plus the stop's or delete's own duration.
func (s *system) lateness(ctx context.Context, t *testing.T, rep *report) {
	s.mu.Lock()
	windows := slices.Clone(s.windows)
	s.mu.Unlock()
	q := func(what, sql string, args ...any) []float64 {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			t.Errorf("ledger: %v", err)
			return nil
		}
		defer rows.Close()
		var out []float64
		for rows.Next() {
			var deadline, occurred time.Time
			if err := rows.Scan(&deadline, &occurred); err != nil {
				t.Errorf("ledger: %v", err)
				return nil
			}
			late := occurred.Sub(deadline).Seconds()
			out = append(out, late)
			if late > 1 {
				rep.attribute(what, deadline, occurred, windows)
			}
		}
		return out
	}
	rep.lateBy = map[string]map[string][]float64{}
	rep.stopLate = q("thread auto-stop", `SELECT stop_deadline, occurred_at FROM lifecycle_events
		WHERE event = 'stopped' AND cause = $1 AND stop_deadline IS NOT NULL AND entity_kind = 'thread'`, activities.CauseIdleTimer)
	rep.filesStopLate = q("files auto-stop", `SELECT stop_deadline, occurred_at FROM lifecycle_events
		WHERE event = 'stopped' AND cause = $1 AND stop_deadline IS NOT NULL AND entity_kind = 'files'`, activities.CauseIdleTimer)
	rep.deleteLate = q("thread auto-delete", `SELECT s.occurred_at + make_interval(secs => $2), d.occurred_at
		FROM lifecycle_events d
		JOIN LATERAL (SELECT occurred_at FROM lifecycle_events s
			WHERE s.entity_kind = d.entity_kind AND s.user_id = d.user_id AND s.entity_id = d.entity_id
			  AND s.event = 'stopped' AND s.occurred_at <= d.occurred_at
			ORDER BY s.occurred_at DESC LIMIT 1) s ON true
		WHERE d.event = 'deleted' AND d.cause = $1`, activities.CauseDeleteTimer, autoDelete.Seconds())
}

type report struct {
	size                                size
	driven                              time.Duration
	injected                            map[string]int
	selfExits                           int
	started, finished                   map[string]int
	requests, retried, retries, gaveUp  int64
	errors500                           int
	causes                              map[string]int
	live, sandboxes, reconciled         int
	duplicates, leftovers               int
	filesChecked, lostFiles             int
	spoolLeft                           int
	lostDetail                          []string
	badWorkflows, running, stuck        int
	stopLate, filesStopLate, deleteLate []float64
	// lateBy counts late (> 1 s) stops and deletes by what was injected
	// while they were due: timer kind → fault kind (or "none") → count.
	lateBy map[string]map[string][]float64
}

func (r *report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fault suite (%s) on %d cores (%s/%s): driven for %s\n", r.size.name, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, r.driven.Round(time.Second))
	fmt.Fprintf(&b, "  intervals: auto-stop %s, auto-delete %s, files auto-stop %s; bound max(1s, 1%% of interval) = 1s\n", autoStop, autoDelete, filesStop)
	var kinds []string
	for k := range r.injected {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var inj []string
	for _, k := range kinds {
		inj = append(inj, fmt.Sprintf("%s %d", k, r.injected[k]))
	}
	fmt.Fprintf(&b, "  injected: %s; processes that exited by themselves and were restarted: %d\n", strings.Join(inj, ", "), r.selfExits)
	var lcs []string
	for k, v := range r.started {
		lcs = append(lcs, fmt.Sprintf("%s %d/%d", k, r.finished[k], v))
	}
	sort.Strings(lcs)
	fmt.Fprintf(&b, "  lifecycles completed/started: %s\n", strings.Join(lcs, ", "))
	var causes []string
	for k, v := range r.causes {
		causes = append(causes, k+" "+strconv.Itoa(v))
	}
	sort.Strings(causes)
	fmt.Fprintf(&b, "  requests: %d, %d needed a retry (%d retries: %s), %d gave up, %d answered 500\n", r.requests, r.retried, r.retries, strings.Join(causes, ", "), r.gaveUp, r.errors500)
	fmt.Fprintf(&b, "  sandboxes: %d live threads, %d threadbox sandboxes in Daytona, %d deleted by the final reconciler pass; duplicates %d, leftovers %d\n",
		r.live, r.sandboxes, r.reconciled, r.duplicates, r.leftovers)
	fmt.Fprintf(&b, "  bytes: %d files read back, %d lost or different; %d objects left in the S3 upload spool\n", r.filesChecked, r.lostFiles, r.spoolLeft)
	fmt.Fprintf(&b, "  workflows: %d failed/timed out/terminated, %d running, %d with an activity stuck retrying\n", r.badWorkflows, r.running, r.stuck)
	fmt.Fprintf(&b, "  lateness after the deadline (s): thread auto-stop %s\n", dist(r.stopLate))
	fmt.Fprintf(&b, "                                   thread auto-delete %s\n", dist(r.deleteLate))
	fmt.Fprintf(&b, "                                   files auto-stop %s\n", dist(r.filesStopLate))
	var whats []string
	for w := range r.lateBy {
		whats = append(whats, w)
	}
	sort.Strings(whats)
	for _, w := range whats {
		var parts []string
		for k, v := range r.lateBy[w] {
			parts = append(parts, fmt.Sprintf("%s %d (max %.1f s)", k, len(v), slices.Max(v)))
		}
		sort.Strings(parts)
		fmt.Fprintf(&b, "  late > 1 s, %s, by the fault in force within %s before: %s\n", w, afterEffect, strings.Join(parts, ", "))
	}
	return b.String()
}

// afterEffect is how long a fault may delay what falls due after it is
// over: a killed worker's sticky workflow tasks wait for their
// schedule-to-start timeout (5 s) before another worker takes them, and
// clients reconnect with backoff.
const afterEffect = 10 * time.Second

// attribute files a late event under the faults in force (or just over)
// between its deadline and when it happened.
func (r *report) attribute(what string, deadline, occurred time.Time, windows []window) {
	if r.lateBy[what] == nil {
		r.lateBy[what] = map[string][]float64{}
	}
	var kinds []string
	for _, w := range windows {
		if w.from.Before(occurred) && w.to.Add(afterEffect).After(deadline) && !slices.Contains(kinds, w.kind) {
			kinds = append(kinds, w.kind)
		}
	}
	if len(kinds) == 0 {
		kinds = []string{"none"}
	}
	sort.Strings(kinds)
	k := strings.Join(kinds, "+")
	r.lateBy[what][k] = append(r.lateBy[what][k], occurred.Sub(deadline).Seconds())
}

// dist prints n, p50, p99, max and how many were within the 1 s bound.
func dist(v []float64) string {
	if len(v) == 0 {
		return "n=0"
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	pct := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	within := 0
	for _, x := range s {
		if x <= 1 {
			within++
		}
	}
	return fmt.Sprintf("n=%d p50 %.3f p99 %.3f max %.3f; within 1 s: %d/%d (%.1f%%)", len(s), pct(0.5), pct(0.99), s[len(s)-1], within, len(s), 100*float64(within)/float64(len(s)))
}
