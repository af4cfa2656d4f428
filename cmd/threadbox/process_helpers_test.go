package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/testenv"
)

// The tests in this file's companions run the built threadbox binary as
// separate processes, as a deployment does: a dependency that is down is
// really down (nothing listens), a shutdown is a real SIGTERM, a crash a
// real SIGKILL.

// proc is a running threadbox process.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
	err  error // set before done closes
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the test's
// reads.
type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

// startProcess runs `threadbox <args>` with env added to the test's
// environment. The process is killed at the end of the test, and its log is
// printed when the test failed.
func startProcess(t *testing.T, name string, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// A group of its own, so killGroup takes the emulator's sandbox
	// processes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	p := &proc{t: t, name: name, cmd: cmd, log: &out.Buffer, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			out.mu.Lock()
			t.Logf("%s log:\n%s", name, out.String())
			out.mu.Unlock()
		}
	})
	return p
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
}

// killGroup SIGKILLs the process and its children (a crash: no shutdown
// code runs) and waits until it is gone.
func (p *proc) killGroup() {
	p.t.Helper()
	require.NoError(p.t, syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL))
	<-p.done
}

// wait waits up to d for the process to exit and returns its exit code (-1
// when it did not exit in time).
func (p *proc) wait(d time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

// processEnv is the environment of a threadbox process against one
// database, Temporal address and emulator, on its own task queue and
// listening on httpAddr.
func processEnv(t *testing.T, databaseURL, temporalAddr, emulatorURL, httpAddr, taskQueue string) map[string]string {
	return map[string]string{
		"DATABASE_URL":        databaseURL,
		"HTTP_ADDR":           httpAddr,
		"TEMPORAL_ADDRESS":    temporalAddr,
		"TEMPORAL_TASK_QUEUE": taskQueue,
		"DAYTONA_API_URL":     emulatorURL + "/api",
		// The suites ask more of one user than a deployment's defaults allow.
		"THREADBOX_MAX_RUNNING_SANDBOXES_PER_USER": "1000",
		"THREADBOX_MAX_RUNNING_SANDBOXES":          "1000",
		"THREADBOX_UPLOAD_DIR":                     t.TempDir(),
		"LOG_LEVEL":                                "warn",
	}
}

// processes are a serve and a worker started by startSystem.
type processes struct {
	serve, worker *proc
	base          string       // serve's URL
	workerBase    string       // the worker's metrics and health listener
	api           *http.Client // validates every exchange against the OpenAPI document
}

// startSystem runs `serve` and `worker` with env (the worker with a
// metrics and health listener of its own).
func startSystem(t *testing.T, env map[string]string) processes {
	t.Helper()
	workerEnv := map[string]string{"THREADBOX_WORKER_METRICS_ADDR": fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	for k, v := range env {
		workerEnv[k] = v
	}
	api := testenv.APIClient(t)
	api.Timeout = 2 * time.Minute
	return processes{
		serve:      startProcess(t, "serve", env, "serve"),
		worker:     startProcess(t, "worker", workerEnv, "worker"),
		base:       "http://" + env["HTTP_ADDR"],
		workerBase: "http://" + workerEnv["THREADBOX_WORKER_METRICS_ADDR"],
		api:        api,
	}
}

// testEmulator runs the Daytona emulator in the test process.
func testEmulator(t *testing.T, faults emulator.Faults) *httptest.Server {
	t.Helper()
	emu, err := emulator.New(context.Background(), emulator.Options{Logger: slog.New(slog.DiscardHandler), Faults: faults})
	require.NoError(t, err)
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { srv.Close(); _ = emu.Close() })
	return srv
}

// viaProxy rewrites a database URL to reach its server through proxy.
func viaProxy(t *testing.T, databaseURL string, proxy *testenv.Proxy) string {
	t.Helper()
	u, err := url.Parse(databaseURL)
	require.NoError(t, err)
	u.Host = proxy.Addr
	return u.String()
}

// hostOf is the host:port of a database URL.
func hostOf(t *testing.T, databaseURL string) string {
	t.Helper()
	u, err := url.Parse(databaseURL)
	require.NoError(t, err)
	return u.Host
}

// answer is one API exchange.
type answer struct {
	status     int
	code       string // the error code, if any
	retryAfter string
	body       []byte
}

// call sends a JSON request through the OpenAPI-validating client and
// returns its answer; a transport error is status 0.
func call(t *testing.T, client *http.Client, method, u, key string, body any) answer {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, r)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: b}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		a.code = e.Error.Code
	}
	return a
}

func (a answer) String() string {
	return fmt.Sprintf("%d %s (Retry-After %q): %s", a.status, a.code, a.retryAfter, strings.TrimSpace(string(a.body)))
}
