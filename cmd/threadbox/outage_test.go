package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestServeAndWorkerRideOutATemporalOutage SIGKILLs the Temporal server
// under a running serve and worker (the built binary) and a warm thread,
// then starts it again on the same port with the same state file:
//   - /healthz stays 200 (the process is alive; restarting it would not
//     bring Temporal back) and /readyz turns 503 naming temporal;
//   - the warm thread's exec is served: the hot path makes no Temporal round
//     trip;
//   - what needs Temporal (a new thread's create, a delete) answers 503
//     orchestrator_unavailable with Retry-After, within its bound, never 500;
//   - once Temporal is back, without restarting either process: /readyz 200,
//     the create and the delete work, and the worker carries on — the warm
//     thread auto-stops on its schedule, counted from its last exec (the one
//     made during the outage, whose touch is delivered once Temporal is
//     back), and its workflow starts it again on the next exec.
func TestServeAndWorkerRideOutATemporalOutage(t *testing.T) {
	const autoStop = 75 * time.Second
	pool, dbURL := testenv.Database(t)
	tp := testenv.NewTemporalProcess(t)
	tp.Start()
	emu := testEmulator(t, emulator.Faults{})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	env := processEnv(t, dbURL, tp.Addr, emu.URL, httpAddr, fmt.Sprintf("outage-%d", time.Now().UnixNano()))
	env["DAYTONA_AUTO_STOP_INTERVAL"] = autoStop.String()
	env["DAYTONA_AUTO_DELETE_INTERVAL"] = "1h"
	procs := startSystem(t, env)
	serve, worker, base, api := procs.serve, procs.worker, procs.base, procs.api
	key, _, err := auth.NewStore(db.New(pool)).Create(context.Background(), "outage-user", false)
	require.NoError(t, err)

	testenv.Eventually(t, 60*time.Second, "serve ready", func() bool { return readyz(t, base).status == http.StatusOK })
	for _, id := range []string{"warm", "doomed"} {
		a := call(t, api, http.MethodPost, base+"/v1/threads", key, map[string]string{"thread_id": id})
		require.Equal(t, http.StatusCreated, a.status, "%s", a)
	}
	exec := func(id, cmd string) answer {
		return call(t, api, http.MethodPost, base+"/v1/threads/"+id+"/exec", key, map[string]any{"command": cmd, "timeout_s": 5})
	}
	for range 2 { // the first use after the create may still ask the workflow
		a := exec("warm", "echo before")
		require.Equal(t, http.StatusOK, a.status, "%s", a)
	}

	// Temporal crashes.
	tp.Kill()
	killed := time.Now()
	requireUnreadyFor(t, base, "temporal", killed)

	// The hot path: a warm thread's exec goes to its sandbox directly.
	a := exec("warm", "echo during")
	require.Equal(t, http.StatusOK, a.status, "a warm exec needs no Temporal: %s", a)
	require.Contains(t, string(a.body), "during")

	// What needs Temporal is refused with its code, within a bound.
	for _, req := range []struct{ method, path string }{
		{http.MethodPost, "/v1/threads"},
		{http.MethodDelete, "/v1/threads/doomed"},
	} {
		var body any
		if req.method == http.MethodPost {
			body = map[string]string{"thread_id": "cold"}
		}
		start := time.Now()
		a := call(t, api, req.method, base+req.path, key, body)
		took := time.Since(start)
		t.Logf("%s %s during the outage: %s in %v", req.method, req.path, a, took.Round(time.Millisecond))
		require.Equal(t, http.StatusServiceUnavailable, a.status, "%s %s: %s", req.method, req.path, a)
		require.Equal(t, "orchestrator_unavailable", a.code)
		require.Equal(t, "5", a.retryAfter)
		require.Less(t, took, 15*time.Second, "%s %s is refused within its bound, not left hanging", req.method, req.path)
	}

	// The last use before Temporal is back: its touch cannot be delivered
	// now, and must be once Temporal answers, or the thread would stop
	// counting from a use before this one. The outage goes on long enough
	// for the touch's send to fail (it waits up to a tenth of the interval
	// to be sent, then tries for 10 s), not merely to arrive late.
	lastUse := time.Now()
	a = exec("warm", "echo last")
	require.Equal(t, http.StatusOK, a.status, "%s", a)
	time.Sleep(time.Until(lastUse.Add(autoStop/10 + 12*time.Second)))

	// Temporal comes back with the same state, on the same port.
	tp.Start()
	back := time.Now()
	testenv.Eventually(t, 60*time.Second, "serve ready again", func() bool { return readyz(t, base).status == http.StatusOK })
	t.Logf("outage %v; /readyz 200 %v after Temporal answered", back.Sub(killed).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	a = call(t, api, http.MethodPost, base+"/v1/threads", key, map[string]string{"thread_id": "cold"})
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, a.status, "%s", a)
	require.Contains(t, string(a.body), `"state":"running"`)
	t.Logf("create served %v after Temporal answered", time.Since(back).Round(time.Millisecond))
	a = exec("cold", "echo cold")
	require.Equal(t, http.StatusOK, a.status, "%s", a)
	// The refused delete had marked the thread deleted (docs/CONTRACT.md):
	// for the user it is gone, and its workflow's idle timer stops the
	// sandbox all the same (below).
	a = call(t, api, http.MethodDelete, base+"/v1/threads/doomed", key, nil)
	require.Equal(t, http.StatusNotFound, a.status, "%s", a)

	// The worker carries on: both threads' idle timers fire, the warm one's
	// counted from its last exec.
	idleStop := func(id string) (deadline, stopped time.Time) {
		testenv.Eventually(t, autoStop+time.Minute, id+" auto-stopped", func() bool {
			err := pool.QueryRow(context.Background(), `SELECT stop_deadline, occurred_at FROM lifecycle_events
				WHERE entity_kind = 'thread' AND entity_id = $1 AND event = 'stopped' AND cause = $2`, id, activities.CauseIdleTimer).Scan(&deadline, &stopped)
			return err == nil
		})
		return deadline, stopped
	}
	idleStop("doomed")
	deadline, stopped := idleStop("warm")
	t.Logf("auto-stop deadline %v after the last exec, fired %v after it", deadline.Sub(lastUse).Round(time.Millisecond), stopped.Sub(deadline).Round(time.Millisecond))
	require.False(t, deadline.Before(lastUse.Add(autoStop)), "the idle deadline counts from the exec made during the outage (deadline %v, last use %v)", deadline, lastUse)
	a = exec("warm", "echo again")
	require.Equal(t, http.StatusOK, a.status, "the stopped thread's workflow starts it again: %s", a)
	require.Contains(t, string(a.body), "again")

	require.True(t, serve.running(), "serve was never restarted")
	require.True(t, worker.running(), "worker was never restarted")
}

// TestServeRidesOutADaytonaOutage SIGKILLs the Daytona emulator (the built
// binary's `emulator`, with a state directory) under a running serve and
// worker and a warm thread, and starts it again on the same port and state:
// /healthz stays 200 and /readyz turns 503 naming daytona; the warm thread's
// exec answers 503 sandbox_provider_unavailable with Retry-After, never 500;
// once Daytona is back, /readyz is 200 and the same thread execs again in
// the same sandbox (the file it wrote is there), no process restarted.
// tests/fault takes the emulator down too, but only checks that its
// lifecycles converge, not what the API answers meanwhile.
func TestServeRidesOutADaytonaOutage(t *testing.T) {
	pool, dbURL := testenv.Database(t)
	_, temporalAddr := testenv.Temporal(t)
	emuAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	stateDir := t.TempDir()
	startEmulator := func() *proc {
		p := startProcess(t, "emulator", map[string]string{"LOG_LEVEL": "warn"}, "emulator", "--addr", emuAddr, "--state-dir", stateDir)
		testenv.Eventually(t, 30*time.Second, "emulator answers", func() bool { return status("http://"+emuAddr+"/api/health", "") != 0 })
		return p
	}
	emu := startEmulator()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	env := processEnv(t, dbURL, temporalAddr, "http://"+emuAddr, httpAddr, fmt.Sprintf("daytona-outage-%d", time.Now().UnixNano()))
	env["DAYTONA_AUTO_STOP_INTERVAL"] = "10m"
	env["DAYTONA_AUTO_DELETE_INTERVAL"] = "1h"
	procs := startSystem(t, env)
	serve, worker, base, api := procs.serve, procs.worker, procs.base, procs.api
	key, _, err := auth.NewStore(db.New(pool)).Create(context.Background(), "daytona-outage-user", false)
	require.NoError(t, err)
	testenv.Eventually(t, 60*time.Second, "serve ready", func() bool { return readyz(t, base).status == http.StatusOK })

	a := call(t, api, http.MethodPost, base+"/v1/threads", key, map[string]string{"thread_id": "warm"})
	require.Equal(t, http.StatusCreated, a.status, "%s", a)
	exec := func(cmd string) answer {
		return call(t, api, http.MethodPost, base+"/v1/threads/warm/exec", key, map[string]any{"command": cmd, "timeout_s": 5})
	}
	a = exec("echo kept > /home/daytona/outage.txt")
	require.Equal(t, http.StatusOK, a.status, "%s", a)

	emu.killGroup()
	killed := time.Now()
	requireUnreadyFor(t, base, "daytona", killed)
	start := time.Now()
	a = exec("cat /home/daytona/outage.txt")
	t.Logf("warm exec during the outage: %s in %v", a, time.Since(start).Round(time.Millisecond))
	require.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a)
	require.Equal(t, "sandbox_provider_unavailable", a.code)
	require.NotEmpty(t, a.retryAfter)
	require.Less(t, time.Since(start), 15*time.Second, "refused within a bound")

	emu = startEmulator()
	back := time.Now()
	testenv.Eventually(t, 60*time.Second, "serve ready again", func() bool { return readyz(t, base).status == http.StatusOK })
	t.Logf("outage %v; /readyz 200 %v after the emulator answered", back.Sub(killed).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	testenv.Eventually(t, 60*time.Second, "the thread execs again", func() bool {
		a = exec("cat /home/daytona/outage.txt")
		return a.status == http.StatusOK
	})
	t.Logf("exec served %v after the emulator answered: %s", time.Since(back).Round(time.Millisecond), a)
	require.Contains(t, string(a.body), "kept", "the same sandbox, with its file")
	require.True(t, emu.running())
	require.True(t, serve.running(), "serve was never restarted")
	require.True(t, worker.running(), "worker was never restarted")
}

// requireUnreadyFor checks what probes see once the dependency dep went away
// (at since): /healthz stays 200 (liveness does not depend on it), and
// /readyz turns 503 with Retry-After within 15 s, naming dep and only dep.
func requireUnreadyFor(t *testing.T, base, dep string, since time.Time) {
	t.Helper()
	require.Equal(t, http.StatusOK, status(base+"/healthz", ""), "liveness does not depend on %s", dep)
	testenv.Eventually(t, 15*time.Second, "readyz names "+dep, func() bool {
		r := readyz(t, base)
		return r.status == http.StatusServiceUnavailable && r.checks[dep] == "unavailable"
	})
	t.Logf("/readyz 503 {%s: unavailable} %v after the kill", dep, time.Since(since).Round(time.Millisecond))
	r := readyz(t, base)
	want := map[string]string{"database": "ok", "temporal": "ok", "daytona": "ok"}
	want[dep] = "unavailable"
	require.Equal(t, want, r.checks)
	require.Equal(t, "5", r.retryAfter)
	require.Equal(t, http.StatusOK, status(base+"/healthz", ""))
}
