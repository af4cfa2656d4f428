package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/internal/testenv"
)

// TestServeDrainsOnSIGTERM runs the built `serve` against a whole system
// (PostgreSQL, Temporal, the emulator, a worker) and sends it SIGTERM while
// an exec is in flight: the listener closes at once (a new connection is
// refused, so a client retries elsewhere), the exec runs to its end and is
// answered 200 with its output, and the process exits 0 within the drain
// bound (THREADBOX_SHUTDOWN_TIMEOUT).
func TestServeDrainsOnSIGTERM(t *testing.T) {
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Minute, AutoDelete: time.Hour})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	penv := processEnv(t, env.DatabaseURL, env.Config.TemporalAddress, env.EmulatorURL, httpAddr, env.Config.TemporalTaskQueue)
	const bound = 20 * time.Second
	penv["THREADBOX_SHUTDOWN_TIMEOUT"] = bound.String()
	serve := startProcess(t, "serve", penv, "serve")
	base := "http://" + httpAddr
	testenv.Eventually(t, 60*time.Second, "serve ready", func() bool { return readyz(t, base).status == http.StatusOK })
	api := testenv.APIClient(t)
	api.Timeout = time.Minute
	a := call(t, api, http.MethodPost, base+"/v1/threads", env.UserKey, map[string]string{"thread_id": "drain"})
	require.Equal(t, http.StatusCreated, a.status, "%s", a)

	execs := env.Calls.Count("POST process/execute")
	done := make(chan answer, 1)
	go func() {
		done <- call(t, api, http.MethodPost, base+"/v1/threads/drain/exec", env.UserKey, map[string]any{"command": "sleep 3; echo finished"})
	}()
	testenv.Eventually(t, 30*time.Second, "the exec reached the sandbox", func() bool { return env.Calls.Count("POST process/execute") > execs })
	signalled := time.Now()
	serve.signal(syscall.SIGTERM)

	testenv.Eventually(t, 5*time.Second, "new connections refused", func() bool {
		c, err := net.DialTimeout("tcp", httpAddr, time.Second)
		if err != nil {
			return true
		}
		_ = c.Close()
		return false
	})
	select {
	case a := <-done:
		require.Equal(t, http.StatusOK, a.status, "%s", a)
		var out struct {
			Output string `json:"output"`
		}
		require.NoError(t, json.Unmarshal(a.body, &out))
		require.Equal(t, "finished", strings.TrimSpace(out.Output), "the exec ran to its end")
	case <-time.After(bound):
		t.Fatal("the exec in flight was not answered within the drain bound")
	}
	code := serve.wait(bound + 5*time.Second - time.Since(signalled))
	require.Equal(t, 0, code, "serve exits 0 within the bound after SIGTERM")
}
