package main

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestKilledWorkersCreateIsRetriedWithinTheHeartbeat SIGKILLs the `worker`
// process while its create activity waits for Daytona (the emulator keeps a
// new sandbox "creating" for a while), and starts another worker: Temporal
// notices the dead worker within the lifecycle heartbeat timeout (5 s) and
// the create is retried on the new one, which finds the sandbox and answers
// the waiting request, long before the activity's StartToClose (5 min), or
// the minute the heartbeat timeout used to be.
func TestKilledWorkersCreateIsRetriedWithinTheHeartbeat(t *testing.T) {
	env, worker, done := createOnWorkerProcess(t, 8*time.Second, "killed", nil)
	worker.signal(syscall.SIGKILL)
	killed := time.Now()
	worker.wait(10 * time.Second)
	require.False(t, worker.running(), "the worker died")
	env.StartWorker()

	select {
	case a := <-done:
		took := time.Since(killed)
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, a.status, "%s", a)
		require.Contains(t, string(a.body), `"state":"running"`)
		t.Logf("create answered %v after the kill", took.Round(time.Second))
		require.Less(t, took, 25*time.Second, "retried within the heartbeat timeout, not after a minute")
	case <-time.After(2 * time.Minute):
		t.Fatal("the create was never answered")
	}
	require.Equal(t, 1, env.Calls.Count("POST /api/sandbox"), "the retry found the sandbox the dead worker created; none duplicated")
}

// TestWorkerFinishesItsActivityOnSIGTERM sends SIGTERM to the `worker`
// process while its create activity waits for Daytona: the worker stops
// polling but lets the activity finish (THREADBOX_SHUTDOWN_TIMEOUT), so its
// result is recorded on its first attempt, then exits 0 within the bound. A
// worker started afterwards completes the thread's create without a
// second Daytona create.
func TestWorkerFinishesItsActivityOnSIGTERM(t *testing.T) {
	const bound = 20 * time.Second
	env, worker, done := createOnWorkerProcess(t, 4*time.Second, "drained", map[string]string{"THREADBOX_SHUTDOWN_TIMEOUT": bound.String()})
	signalled := time.Now()
	worker.signal(syscall.SIGTERM)
	code := worker.wait(bound + 5*time.Second)
	require.Equal(t, 0, code, "the worker exits 0 within the bound")
	t.Logf("worker exited %v after SIGTERM", time.Since(signalled).Round(100*time.Millisecond))

	wfID := entity.Thread(env.UserID, "drained").WorkflowID()
	completed, attempts := activityOutcome(t, env, wfID, activities.NameEnsureSandbox)
	require.Equal(t, 1, completed, "the create activity finished on the stopping worker")
	require.Equal(t, int32(1), attempts, "on its first attempt")

	env.StartWorker()
	select {
	case a := <-done:
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, a.status, "%s", a)
	case <-time.After(time.Minute):
		t.Fatal("the create was never answered")
	}
	require.Equal(t, 1, env.Calls.Count("POST /api/sandbox"), "one Daytona create")
}

// activityOutcome counts the completions of activity name in a workflow's
// history and the highest attempt it was started with.
func activityOutcome(t *testing.T, env *testenv.Env, wfID, name string) (completed int, attempts int32) {
	t.Helper()
	scheduled := map[int64]bool{}
	it := env.Temporal.GetWorkflowHistory(context.Background(), wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == name {
				scheduled[ev.GetEventId()] = true
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if a := ev.GetActivityTaskStartedEventAttributes(); scheduled[a.GetScheduledEventId()] {
				attempts = max(attempts, a.GetAttempt())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if scheduled[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] {
				completed++
			}
		}
	}
	return completed, attempts
}

// createOnWorkerProcess runs a whole system whose only worker is the built
// binary's `worker` process (with extra environment), the emulator keeping
// each new sandbox "creating" for slowCreate, and starts creating thread id
// through the API; it returns once the worker's create has reached Daytona,
// with the channel the create's answer arrives on.
func createOnWorkerProcess(t *testing.T, slowCreate time.Duration, id string, extra map[string]string) (*testenv.Env, *proc, <-chan answer) {
	t.Helper()
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Minute, AutoDelete: time.Hour, NoWorker: true,
		Faults: emulator.Faults{SlowCreate: slowCreate}})
	penv := processEnv(t, env.DatabaseURL, env.Config.TemporalAddress, env.EmulatorURL,
		fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), env.Config.TemporalTaskQueue)
	for k, v := range extra {
		penv[k] = v
	}
	worker := startProcess(t, "worker", penv, "worker")
	api := testenv.APIClient(t)
	api.Timeout = 3 * time.Minute
	done := make(chan answer, 1)
	go func() {
		done <- call(t, api, http.MethodPost, env.URL+"/v1/threads", env.UserKey, map[string]string{"thread_id": id})
	}()
	testenv.Eventually(t, 60*time.Second, "the worker's create reached Daytona", func() bool { return env.Calls.Count("POST /api/sandbox") > 0 })
	return env, worker, done
}
