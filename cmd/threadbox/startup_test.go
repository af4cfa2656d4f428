package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestServeAndWorkerStartWithoutDependencies starts the built `serve` and
// `worker` with PostgreSQL and Temporal down (nothing listens where they
// are configured; the database has no schema yet). serve answers /healthz
// 200 at once and /readyz 503 naming what is missing; API requests answer
// 503 with Retry-After and the missing dependency's code. PostgreSQL comes
// up (serve applies the migrations), then Temporal: /readyz turns 200 and a
// thread is created and execs, served by the same two processes, never
// restarted.
func TestServeAndWorkerStartWithoutDependencies(t *testing.T) {
	pool, dbURL := testenv.EmptyDatabase(t)
	pg := testenv.NewProxy(t, hostOf(t, dbURL))
	temporalAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	emu := testEmulator(t, emulator.Faults{})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	env := processEnv(t, viaProxy(t, dbURL, pg), temporalAddr, emu.URL, httpAddr, "startup-"+fmt.Sprint(time.Now().UnixNano()))
	procs := startSystem(t, env)
	serve, worker, base, api := procs.serve, procs.worker, procs.base, procs.api

	testenv.Eventually(t, 30*time.Second, "serve answers /healthz", func() bool { return status(base+"/healthz", "") == http.StatusOK })
	testenv.Eventually(t, 30*time.Second, "worker answers /healthz", func() bool { return status(procs.workerBase+"/healthz", "") == http.StatusOK })
	ready := readyz(t, base)
	require.Equal(t, http.StatusServiceUnavailable, ready.status, "%s", ready)
	require.Equal(t, "5", ready.retryAfter)
	require.Equal(t, map[string]string{"database": "unavailable", "temporal": "unavailable", "daytona": "ok"}, ready.checks)

	// No database: every API request is 503 database_unavailable (before
	// any key can be looked up), never a 500.
	a := call(t, api, http.MethodPost, base+"/v1/threads", "tb_whatever", map[string]string{"thread_id": "t1"})
	require.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a)
	require.Equal(t, "database_unavailable", a.code)
	require.NotEmpty(t, a.retryAfter)

	// PostgreSQL comes up: serve migrates; Temporal is still down.
	pg.Start()
	testenv.Eventually(t, 60*time.Second, "database ready", func() bool { return readyz(t, base).checks["database"] == "ok" })
	require.Equal(t, "unavailable", readyz(t, base).checks["temporal"])
	key, _, err := auth.NewStore(db.New(pool)).Create(context.Background(), "startup-user", false)
	require.NoError(t, err)
	a = call(t, api, http.MethodPost, base+"/v1/threads", key, map[string]string{"thread_id": "t1"})
	require.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a)
	require.Equal(t, "orchestrator_unavailable", a.code)
	require.NotEmpty(t, a.retryAfter)

	// Temporal comes up on its configured port.
	testenv.TemporalAt(t, temporalAddr)
	testenv.Eventually(t, 60*time.Second, "serve ready", func() bool { return readyz(t, base).status == http.StatusOK })
	// The refused create kept the thread (its sandbox could not be had):
	// the client's retry finds it and gets it running.
	a = call(t, api, http.MethodPost, base+"/v1/threads", key, map[string]string{"thread_id": "t1"})
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, a.status, "%s", a)
	require.Contains(t, string(a.body), `"state":"running"`)
	a = call(t, api, http.MethodPost, base+"/v1/threads/t1/exec", key, map[string]any{"command": "echo hello"})
	require.Equal(t, http.StatusOK, a.status, "%s", a)
	var out struct {
		ExitCode int    `json:"exit_code"`
		Output   string `json:"output"`
	}
	require.NoError(t, json.Unmarshal(a.body, &out))
	require.Equal(t, 0, out.ExitCode)
	require.Equal(t, "hello", strings.TrimSpace(out.Output))
	require.True(t, serve.running(), "serve was never restarted")
	require.True(t, worker.running(), "worker was never restarted")
}

// readiness is /readyz's answer.
type readiness struct {
	status     int
	retryAfter string
	checks     map[string]string
}

func (r readiness) String() string { return fmt.Sprintf("%d %v", r.status, r.checks) }

func readyz(t *testing.T, base string) readiness {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return readiness{}
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return readiness{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), checks: body.Checks}
}
