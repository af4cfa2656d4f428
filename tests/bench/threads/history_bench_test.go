package threads

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	temporalclient "go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
)

// historyOf counts the events of every run of a workflow (ContinueAsNew
// starts new runs; their events cost the same) and the signals among them.
func historyOf(t testing.TB, c temporalclient.Client, wfID string) (events, signals, runs int) {
	runID := ""
	for {
		it := c.GetWorkflowHistory(context.Background(), wfID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		next := ""
		runs++
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			events++
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
				signals++
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
				next = ev.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
			}
		}
		if next == "" {
			return events, signals, runs
		}
		runID = next
	}
}

// BenchmarkBusyThreadHistory measures what a busy thread costs in Temporal
// history: one thread with the production intervals (auto-stop 15 min), an
// exec every 100 ms for THREADBOX_BENCH_BUSY_SECONDS (default 120) of wall
// time, then the events and signals of its workflow (all runs), scaled to an
// hour. Every event is billable on Temporal Cloud and each run's history is
// bounded, so this is the hot path's bill.
//
//	go test ./tests/bench/threads -run '^$' -bench BusyThreadHistory -benchtime 1x -timeout 30m
func BenchmarkBusyThreadHistory(b *testing.B) {
	var t testing.TB = b
	secs := 120
	if v, err := strconv.Atoi(os.Getenv("THREADBOX_BENCH_BUSY_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	env := testenv.New(t, testenv.Options{AutoStop: 15 * time.Minute, AutoDelete: 2 * time.Hour})
	var th struct {
		SandboxID string `json:"sandbox_id"`
	}
	require.NoError(t, json.Unmarshal(post(t, env, "/v1/threads", map[string]string{"thread_id": "busy"}), &th))
	wfID := entity.Thread(env.UserID, "busy").WorkflowID()
	ev0, sig0, _ := historyOf(t, env.Temporal, wfID)

	exec := map[string]any{"command": "true", "timeout_s": 60}
	start := time.Now()
	n := 0
	for time.Since(start) < time.Duration(secs)*time.Second {
		post(t, env, "/v1/threads/busy/exec", exec)
		n++
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	time.Sleep(3 * time.Second) // let the last debounced touch land
	ev1, sig1, runs := historyOf(t, env.Temporal, wfID)
	perHour := func(x int) float64 { return float64(x) * float64(time.Hour) / float64(elapsed) }
	fmt.Printf("busy thread: %d execs in %s; history +%d events (+%d signals), %d run(s)\n", n, elapsed.Round(time.Second), ev1-ev0, sig1-sig0, runs)
	fmt.Printf("| per busy thread per hour | events %.0f | signals %.0f |\n", perHour(ev1-ev0), perHour(sig1-sig0))
}
