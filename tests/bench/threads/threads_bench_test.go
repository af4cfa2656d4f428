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
	"slices"
	"strconv"
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
	var mu sync.Mutex
	var firstErr error
	lat := make([]time.Duration, 0, total)
	var wg sync.WaitGroup
	per := total / conc
	for range conc {
		wg.Go(func() {
			local := make([]time.Duration, 0, per)
			for range per {
				s := time.Now()
				err := fn()
				local = append(local, time.Since(s))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat, firstErr
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

// updatesIn counts the ensure-running updates in a thread's current run.
func updatesIn(t testing.TB, env *testenv.Env, wfID string) int {
	it := env.Temporal.GetWorkflowHistory(context.Background(), wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED {
			n++
		}
	}
	return n
}

func BenchmarkThreads(b *testing.B) {
	var t testing.TB = b
	env := testenv.New(t, testenv.Options{AutoStop: 15 * time.Minute, AutoDelete: 2 * time.Hour})
	ctx := context.Background()

	var th struct {
		SandboxID string `json:"sandbox_id"`
	}
	require.NoError(t, json.Unmarshal(post(t, env, "/v1/threads", map[string]string{"thread_id": "bench"}), &th))
	sb, err := env.Gateway.GetSandbox(ctx, th.SandboxID)
	require.NoError(t, err)
	tb := env.Gateway.Toolbox(sb.ID, sb.ToolboxURL)
	execBody := map[string]any{"command": "true", "timeout_s": 60}
	// Warm both paths.
	for range 20 {
		post(t, env, "/v1/threads/bench/exec", execBody)
		_, err := tb.Exec(ctx, daytona.ExecRequest{Command: "true", Timeout: time.Minute})
		require.NoError(t, err)
	}
	wfID := entity.Thread(env.UserID, "bench").WorkflowID()
	updatesBefore := updatesIn(t, env, wfID)

	fmt.Println("### (a) exec: threadbox vs direct toolbox call (command `true`)")
	fmt.Println("| clients | path | requests | p50 ms | p99 ms |")
	fmt.Println("|---|---|---|---|---|")
	for _, conc := range []int{1, 32} {
		total := 400
		if conc > 1 {
			total = 1600
		}
		direct, err := measure(conc, total, func() error {
			_, err := tb.Exec(ctx, daytona.ExecRequest{Command: "true", Timeout: time.Minute})
			return err
		})
		require.NoError(t, err)
		via, err := measure(conc, total, func() error {
			b, _ := json.Marshal(execBody)
			req, _ := http.NewRequest(http.MethodPost, env.URL+"/v1/threads/bench/exec", bytes.NewReader(b))
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
		})
		require.NoError(t, err)
		fmt.Printf("| %d | direct toolbox | %d | %s | %s |\n", conc, len(direct), ms(pct(direct, .5)), ms(pct(direct, .99)))
		fmt.Printf("| %d | threadbox | %d | %s | %s |\n", conc, len(via), ms(pct(via, .5)), ms(pct(via, .99)))
		fmt.Printf("| %d | overhead | | %s | %s |\n", conc, ms(pct(via, .5)-pct(direct, .5)), ms(pct(via, .99)-pct(direct, .99)))
	}
	fmt.Printf("\nensure-running updates during the warm exec runs: %d\n\n", updatesIn(t, env, wfID)-updatesBefore)

	fmt.Println("### (b) thread create until first exec vs raw emulator create + exec")
	fmt.Println("| path | runs | p50 ms | max ms |")
	fmt.Println("|---|---|---|---|")
	const runs = 10
	var viaCreate, raw []time.Duration
	for i := range runs {
		s := time.Now()
		id := "cold-" + strconv.Itoa(i)
		post(t, env, "/v1/threads", map[string]string{"thread_id": id})
		post(t, env, "/v1/threads/"+id+"/exec", execBody)
		viaCreate = append(viaCreate, time.Since(s))

		s = time.Now()
		rsb, err := env.Gateway.FindOrCreateSandbox(ctx, daytona.CreateSandboxParams{Name: fmt.Sprintf("raw-bench-%d", i),
			Labels: map[string]string{"bench": "raw"}})
		require.NoError(t, err)
		_, err = env.Gateway.Toolbox(rsb.ID, rsb.ToolboxURL).Exec(ctx, daytona.ExecRequest{Command: "true", Timeout: time.Minute})
		require.NoError(t, err)
		raw = append(raw, time.Since(s))
	}
	slices.Sort(viaCreate)
	slices.Sort(raw)
	fmt.Printf("| threadbox POST /v1/threads + exec | %d | %s | %s |\n", runs, ms(pct(viaCreate, .5)), ms(viaCreate[runs-1]))
	fmt.Printf("| gateway FindOrCreateSandbox + exec | %d | %s | %s |\n\n", runs, ms(pct(raw, .5)), ms(raw[runs-1]))

	n := 1000
	if v := os.Getenv("THREADBOX_BENCH_THREADS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	fmt.Printf("### (c) idle thread workflows held by one worker (%d threads)\n", n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := time.Now()
	_, err = measure(16, n, func() error {
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
