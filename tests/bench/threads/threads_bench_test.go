// Package threads holds the thread benchmarks. They bring up the whole
// system (testenv) and print tables for docs/BENCHMARKS.md; they run only
// as Go benchmarks (never in the normal test run); each runs its
// measurements once and prints its tables:
//
//	go test ./tests/bench/threads -run '^$' -bench Threads -benchtime 1x -timeout 30m
package threads

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
)

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 5 * time.Minute}

func post(t testing.TB, env *testenv.Env, path string, v any) []byte {
	b, _ := json.Marshal(v)
	req, _ := http.NewRequest(http.MethodPost, env.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+env.UserKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, string(body))
	return body
}

// measure runs total calls of fn spread over conc goroutines and returns
// the sorted latencies.
func measure(conc, total int, fn func() error) ([]time.Duration, error) {
	a, _, err := interleave(conc, total, fn, nil)
	return a, err
}

// interleave runs pairs calls of a and of b over conc goroutines, each
// goroutine alternating a and b (A B A B; odd goroutines start with b), so
// both paths see the same machine at the same moment: drift on a shared
// machine (other builds, CPU frequency) lands on both sides of the ratio
// instead of biasing it. b may be nil (a alone). It returns both sorted
// latency lists.
func interleave(conc, pairs int, a, b func() error) (la, lb []time.Duration, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	per := pairs / conc
	for g := range conc {
		wg.Go(func() {
			var locA, locB []time.Duration
			run := func(fn func() error, into *[]time.Duration) bool {
				s := time.Now()
				e := fn()
				*into = append(*into, time.Since(s))
				if e != nil {
					mu.Lock()
					if err == nil {
						err = e
					}
					mu.Unlock()
					return false
				}
				return true
			}
			for i := range per {
				if b == nil {
					if !run(a, &locA) {
						return
					}
					continue
				}
				first, second := a, b
				fa, fb := &locA, &locB
				if (g+i)%2 == 1 {
					first, second, fa, fb = b, a, fb, fa
				}
				if !run(first, fa) || !run(second, fb) {
					return
				}
			}
			mu.Lock()
			la = append(la, locA...)
			lb = append(lb, locB...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(la)
	slices.Sort(lb)
	return la, lb, err
}

// loadavg is the 1-minute load average (/proc/loadavg), recorded next to
// every figure: the machine is shared, and a ratio is only comparable with
// one taken under a similar load.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// ratio formats a/b with two decimals.
func ratio(a, b time.Duration) string {
	if b == 0 {
		return "?"
	}
	return strconv.FormatFloat(float64(a)/float64(b), 'f', 2, 64)
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, int(float64(len(l))*p))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64)
}

// BenchmarkThreads prints tables (a), (b) and (c) of docs/BENCHMARKS.md
// "Threads"; each is a sub-benchmark so one table can be run alone
// (-bench 'Threads/Exec'). THREADBOX_BENCH_CPUPROFILE=file writes a CPU
// profile of the whole process (API, worker, emulator) for the run.
func BenchmarkThreads(b *testing.B) {
	env := testenv.New(b, testenv.Options{AutoStop: 15 * time.Minute, AutoDelete: 2 * time.Hour})
	if p := os.Getenv("THREADBOX_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		require.NoError(b, err)
		require.NoError(b, pprof.StartCPUProfile(f))
		b.Cleanup(func() { pprof.StopCPUProfile(); f.Close() })
	}
	b.Run("Exec", func(b *testing.B) { benchExec(b, env) })
	b.Run("Create", func(b *testing.B) { benchCreate(b, env) })
	b.Run("Idle", func(b *testing.B) { benchIdle(b, env) })
}

// benchExec is table (a): exec `true` through threadbox vs. a direct
// toolbox call on the same sandbox, interleaved.
func benchExec(b *testing.B, env *testenv.Env) {
	var t testing.TB = b
	ctx := context.Background()
	var th struct {
		SandboxID string `json:"sandbox_id"`
	}
	require.NoError(t, json.Unmarshal(post(t, env, "/v1/threads", map[string]string{"thread_id": "bench"}), &th))
	sb, err := env.Gateway.GetSandbox(ctx, th.SandboxID)
	require.NoError(t, err)
	tb := env.Gateway.Toolbox(sb.ID, sb.ToolboxURL)
	execBody, _ := json.Marshal(map[string]any{"command": "true", "timeout_s": 60})
	direct := func() error {
		_, err := tb.Exec(ctx, daytona.ExecRequest{Command: "true", Timeout: time.Minute})
		return err
	}
	via := func() error {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/v1/threads/bench/exec", bytes.NewReader(execBody))
		req.Header.Set("Authorization", "Bearer "+env.UserKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	// Warm both paths (and open the connections 32 clients use).
	_, _, err = interleave(32, 64, direct, via)
	require.NoError(t, err)
	wfID := entity.Thread(env.UserID, "bench").WorkflowID()
	updatesBefore := env.AcceptedUpdates(wfID)

	fmt.Println("### (a) exec: threadbox vs direct toolbox call (command `true`), interleaved A B A B")
	fmt.Println("| clients | pairs | load avg | direct p50 ms | threadbox p50 ms | added p50 ms | ratio p50 | direct p99 ms | threadbox p99 ms | ratio p99 |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, conc := range []int{1, 32} {
		pairs := 400
		if conc > 1 {
			pairs = 1600
		}
		load := loadavg()
		d, v, err := interleave(conc, pairs, direct, via)
		require.NoError(t, err)
		fmt.Printf("| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", conc, len(d), load,
			ms(pct(d, .5)), ms(pct(v, .5)), ms(pct(v, .5)-pct(d, .5)), ratio(pct(v, .5), pct(d, .5)),
			ms(pct(d, .99)), ms(pct(v, .99)), ratio(pct(v, .99), pct(d, .99)))
	}
	fmt.Printf("\nensure-running updates during the warm exec runs: %d\n\n", env.AcceptedUpdates(wfID)-updatesBefore)
}

// benchCreate is table (b): thread create until its first exec vs. the
// raw create + exec through the gateway, interleaved run by run.
func benchCreate(b *testing.B, env *testenv.Env) {
	var t testing.TB = b
	ctx := context.Background()
	execBody := map[string]any{"command": "true", "timeout_s": 60}
	runs := 30
	if v := os.Getenv("THREADBOX_BENCH_CREATE_RUNS"); v != "" {
		runs, _ = strconv.Atoi(v)
	}
	fmt.Println("### (b) thread create until first exec vs raw emulator create + exec, interleaved")
	var viaCreate, createOnly, raw []time.Duration
	load := loadavg()
	var lastID string
	var lastStart time.Time
	for i := range runs {
		s := time.Now()
		id := fmt.Sprintf("cold-%d-%d", time.Now().UnixNano(), i)
		lastID, lastStart = id, s
		post(t, env, "/v1/threads", map[string]string{"thread_id": id})
		createOnly = append(createOnly, time.Since(s))
		post(t, env, "/v1/threads/"+id+"/exec", execBody)
		viaCreate = append(viaCreate, time.Since(s))

		s = time.Now()
		rsb, err := env.Gateway.FindOrCreateSandbox(ctx, daytona.CreateSandboxParams{Name: fmt.Sprintf("raw-bench-%d-%d", time.Now().UnixNano(), i),
			Labels: map[string]string{"bench": "raw"}})
		require.NoError(t, err)
		_, err = env.Gateway.Toolbox(rsb.ID, rsb.ToolboxURL).Exec(ctx, daytona.ExecRequest{Command: "true", Timeout: time.Minute})
		require.NoError(t, err)
		raw = append(raw, time.Since(s))
	}
	if os.Getenv("THREADBOX_BENCH_TRACE") != "" {
		timeline(t, env, entity.Thread(env.UserID, lastID).WorkflowID(), lastStart)
	}
	slices.Sort(viaCreate)
	slices.Sort(raw)
	fmt.Println("| runs | load avg | raw p50 ms | threadbox p50 ms | added p50 ms | raw max ms | threadbox max ms |")
	fmt.Println("|---|---|---|---|---|---|---|")
	fmt.Printf("| %d | %s | %s | %s | %s | %s | %s |\n\n", runs, load, ms(pct(raw, .5)), ms(pct(viaCreate, .5)),
		ms(pct(viaCreate, .5)-pct(raw, .5)), ms(raw[runs-1]), ms(viaCreate[runs-1]))
	slices.Sort(createOnly)
	fmt.Printf("threadbox POST /v1/threads alone: p50 %s ms\n\n", ms(pct(createOnly, .5)))
}

// timeline prints a thread's workflow history as offsets from the moment
// its create request was sent (THREADBOX_BENCH_TRACE=1): where the time
// between the request and the first exec goes.
func timeline(t testing.TB, env *testenv.Env, wfID string, start time.Time) {
	it := env.Temporal.GetWorkflowHistory(context.Background(), wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	fmt.Println("| event | at ms (from the create request) |")
	fmt.Println("|---|---|")
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		fmt.Printf("| %s | %s |\n", ev.GetEventType(), ms(ev.GetEventTime().AsTime().Sub(start)))
	}
	fmt.Println()
}

// benchIdle is table (c): the memory of idle thread workflows in one worker.
func benchIdle(b *testing.B, env *testenv.Env) {
	var t testing.TB = b
	n := 1000
	if v := os.Getenv("THREADBOX_BENCH_THREADS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	fmt.Printf("### (c) idle thread workflows held by one worker (%d threads)\n", n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := time.Now()
	_, err := measure(16, n, func() error {
		id := "idle-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		post(t, env, "/v1/threads", map[string]string{"thread_id": id})
		return nil
	})
	require.NoError(t, err)
	took := time.Since(s)
	runtime.GC()
	runtime.ReadMemStats(&after)
	fmt.Println("| threads | create time s | heap in use before MiB | after MiB | per thread KiB | goroutines |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| %d | %.1f | %.1f | %.1f | %.1f | %d |\n", n, took.Seconds(),
		float64(before.HeapInuse)/(1<<20), float64(after.HeapInuse)/(1<<20),
		float64(int64(after.HeapInuse)-int64(before.HeapInuse))/1024/float64(n), runtime.NumGoroutine())
}
