package main

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestKilledWorkersCreateIsRetriedWithinTheHeartbeat SIGKILLs the `worker`
// process while its create activity waits for Daytona (the emulator keeps a
// new sandbox "creating" for a while), and starts another worker: Temporal
// notices the dead worker within the lifecycle heartbeat timeout (10 s) and
// the create is retried on the new one, which finds the sandbox and answers
// the waiting request, long before the activity's StartToClose (5 min), or
// the minute the heartbeat timeout used to be.
func TestKilledWorkersCreateIsRetriedWithinTheHeartbeat(t *testing.T) {
	const slowCreate = 8 * time.Second
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Minute, AutoDelete: time.Hour, NoWorker: true,
		Faults: emulator.Faults{SlowCreate: slowCreate}})
	penv := processEnv(t, env.DatabaseURL, env.Config.TemporalAddress, env.EmulatorURL,
		fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), env.Config.TemporalTaskQueue)
	worker := startProcess(t, "worker", penv, "worker")

	api := testenv.APIClient(t)
	api.Timeout = 3 * time.Minute
	done := make(chan answer, 1)
	go func() {
		done <- call(t, api, http.MethodPost, env.URL+"/v1/threads", env.UserKey, map[string]string{"thread_id": "killed"})
	}()
	testenv.Eventually(t, 60*time.Second, "the worker's create reached Daytona", func() bool { return env.Calls.Count("POST /api/sandbox") > 0 })
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
		require.Less(t, took, 40*time.Second, "retried within the heartbeat timeout, not after a minute")
	case <-time.After(2 * time.Minute):
		t.Fatal("the create was never answered")
	}
	require.Equal(t, 1, env.Calls.Count("POST /api/sandbox"), "the retry found the sandbox the dead worker created; none duplicated")
}
