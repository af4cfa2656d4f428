package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/api"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/testenv"
)

// A background command that runs for three idle intervals: the sandbox is
// not stopped under it, and it ends with its exit code and all of its
// output; then the sandbox idles out as usual. Its output is cut at the
// limit while it runs on; its timeout ends it in the sandbox.
func TestBackgroundCommandOutlivesIdleInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: 2 * time.Second, AutoDelete: time.Minute,
		Configure: func(c *config.Config) { c.ExecOutputLimit = 4096 }})
	c := newTC(t, env, env.UserKey)
	_, th := c.create("bg")
	sb := *th.SandboxID

	start := time.Now()
	cmd := c.startCommand("bg", map[string]any{
		"command":   `for i in 1 2 3 4 5 6; do echo "line $i"; sleep 1; done; echo oops >&2; exit 7`,
		"timeout_s": 60,
	})
	// The start answers before the command ends: its answer says running,
	// with no exit code (a wall-clock bound here would measure the machine).
	require.True(t, strings.HasPrefix(cmd.CommandID, "cmd-"), cmd.CommandID)
	require.Equal(t, "running", cmd.Status, "the start answers before the command ends")
	require.Nil(t, cmd.ExitCode)
	require.Equal(t, "bg", cmd.ThreadID)
	require.Equal(t, 60, cmd.TimeoutS)

	requireSandboxUp(t, env, sb, start.Add(6500*time.Millisecond))
	got := c.waitCommand("bg", cmd.CommandID, 20*time.Second)
	require.Equal(t, "exited", got.Command.Status)
	require.NotNil(t, got.Command.ExitCode)
	require.Equal(t, 7, exitCode(t, got.Command.ExitCode))
	require.Equal(t, "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\noops\n", got.Output)
	require.False(t, got.Truncated)
	require.False(t, got.Command.Truncated)
	require.NotNil(t, got.Command.FinishedAt)
	require.GreaterOrEqual(t, got.Command.FinishedAt.Sub(got.Command.StartedAt), 5*time.Second)
	testenv.Eventually(t, 30*time.Second, "the sandbox to idle out once the command ended", func() bool {
		return sandboxState(t, env, sb) == daytona.StateStopped
	})

	// The output is cut at the limit; the command runs on to its end.
	big := c.startCommand("bg", map[string]any{"command": `head -c 100000 /dev/zero | tr '\0' x; echo; echo done > ~/after-limit`})
	got = c.waitCommand("bg", big.CommandID, 20*time.Second)
	require.Equal(t, "exited", got.Command.Status)
	require.Equal(t, 0, exitCode(t, got.Command.ExitCode))
	require.True(t, got.Truncated)
	require.True(t, got.Command.Truncated)
	require.Equal(t, strings.Repeat("x", 4096), got.Output)
	require.Equal(t, "done\n", c.exec("bg", "cat ~/after-limit").Output)

	// The timeout is the sandbox's: 124, with what it printed until then.
	to := c.startCommand("bg", map[string]any{"command": "echo start; sleep 30", "timeout_s": 1})
	got = c.waitCommand("bg", to.CommandID, 15*time.Second)
	require.Equal(t, "timed_out", got.Command.Status)
	require.Equal(t, 124, exitCode(t, got.Command.ExitCode))
	require.Equal(t, "start\n", got.Output)

	// Bad starts touch nothing.
	resp, body := c.call(http.MethodPost, "/v1/threads/bg/commands", map[string]any{"command": "true", "timeout_s": 0})
	requireErr(t, resp, body, http.StatusBadRequest, "invalid_timeout")
	resp, body = c.call(http.MethodPost, "/v1/threads/bg/commands", map[string]any{"command": " "})
	requireErr(t, resp, body, http.StatusBadRequest, "missing_command")
	resp, body = c.call(http.MethodPost, "/v1/threads/bg/commands", map[string]any{"command": "true", "kill_on_disconnect": true})
	requireErr(t, resp, body, http.StatusBadRequest, "invalid_parameter")
	resp, body = c.call(http.MethodPost, "/v1/threads/nope/commands", map[string]any{"command": "true"})
	requireErr(t, resp, body, http.StatusNotFound, "not_found")

	resp, body = c.call(http.MethodGet, "/v1/threads/bg/commands", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var list struct {
		Commands []commandJSON `json:"commands"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.Commands, 3)
	require.Equal(t, to.CommandID, list.Commands[0].CommandID, "newest first")
	require.Equal(t, cmd.CommandID, list.Commands[2].CommandID)
	require.Equal(t, "exited", list.Commands[2].Status)
}

// The API replica that started a command dies at once: the command's lease
// alone keeps the sandbox up until it ends, and another replica reports its
// end (and releases the lease, so the sandbox idles out).
func TestBackgroundCommandSurvivesItsReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: 2 * time.Second, AutoDelete: time.Minute})
	c := newTC(t, env, env.UserKey)
	_, th := c.create("r")
	sb := *th.SandboxID

	replica, err := api.New(api.Deps{Config: env.Config, Pool: env.Pool, Temporal: env.Temporal, Daytona: env.Gateway, Logger: env.Logger})
	require.NoError(t, err)
	rs := httptest.NewServer(replica.Handler())
	start := time.Now()
	b, _ := json.Marshal(map[string]any{"command": "sleep 6; echo done", "timeout_s": 30})
	req, err := http.NewRequest(http.MethodPost, rs.URL+"/v1/threads/r/commands", bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+env.UserKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := testenv.APIClient(t).Do(req)
	require.NoError(t, err)
	var cmd commandJSON
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&cmd))
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	rs.Close()
	replica.Close() // its watcher, cache and holds are gone

	requireSandboxUp(t, env, sb, start.Add(6500*time.Millisecond))
	got := c.waitCommand("r", cmd.CommandID, 20*time.Second)
	require.Equal(t, "exited", got.Command.Status)
	require.Equal(t, 0, exitCode(t, got.Command.ExitCode))
	require.Equal(t, "done\n", got.Output)
	testenv.Eventually(t, 30*time.Second, "the sandbox to idle out once the lease was released", func() bool {
		return sandboxState(t, env, sb) == daytona.StateStopped
	})
}

// Following a command shows its output as it is printed; a command can be
// signalled, killed (DELETE), and its processes go with it.
func TestBackgroundCommandFollowSignalKill(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Second})
	c := newTC(t, env, env.UserKey)
	c.create("f")

	cmd := c.startCommand("f", map[string]any{"command": "echo first; sleep 3; echo second"})
	resp, next := c.stream(http.MethodGet, "/v1/threads/f/commands/"+cmd.CommandID+"/output?follow=true", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	events := readAll(next)
	resp.Body.Close()
	require.GreaterOrEqual(t, len(events), 3, "%+v", events)
	require.Equal(t, "command", events[0].Type)
	require.Equal(t, cmd.CommandID, events[0].Command.CommandID)
	last := events[len(events)-1]
	require.Equal(t, "exit", last.Type, "%+v", events)
	require.Equal(t, "exited", last.Status)
	require.Equal(t, 0, exitCode(t, last.ExitCode))
	require.Equal(t, "first\nsecond\n", outputOf(events))
	require.Equal(t, "output", events[1].Type)
	require.True(t, strings.HasPrefix(events[1].Data, "first"), events[1].Data)
	require.GreaterOrEqual(t, last.at.Sub(events[1].at), 2*time.Second, "the first output arrived only at the end")

	// Each follow ends with the whole output, also when the replica's watcher
	// records the end (and deletes the command's session) first.
	for i := 0; i < 5; i++ {
		th := fmt.Sprintf("f%d", i)
		c.create(th)
		r := c.startCommand(th, map[string]any{"command": "echo a; sleep 1; echo b; exit 3"})
		events := c.follow(th, r.CommandID)
		require.Equal(t, "a\nb\n", outputOf(events), "%+v", events)
		require.NotEmpty(t, events)
		last := events[len(events)-1]
		require.Equal(t, "exit", last.Type, "%+v", events)
		require.Equal(t, "exited", last.Status, "%+v", events)
		require.Equal(t, 3, exitCode(t, last.ExitCode))
	}

	// Following an ended command replays its output and ends.
	events = c.follow("f", cmd.CommandID)
	require.Equal(t, "first\nsecond\n", outputOf(events))
	require.NotEmpty(t, events)
	require.Equal(t, "exit", events[len(events)-1].Type)

	// A signal reaches the command; it decides what to do with it.
	sig := c.startCommand("f", map[string]any{"command": "trap 'echo got-int' INT; echo ready; while :; do sleep 0.1; done"})
	path := "/v1/threads/f/commands/" + sig.CommandID
	testenv.Eventually(t, 30*time.Second, "the command's first output", func() bool {
		return c.output("f", sig.CommandID).Output == "ready\n"
	})
	resp, body := c.call(http.MethodPost, path+"/signal", map[string]string{"signal": "INT"})
	require.Equal(t, http.StatusNoContent, resp.StatusCode, string(body))
	testenv.Eventually(t, 30*time.Second, "the command to handle SIGINT", func() bool {
		return strings.Contains(c.output("f", sig.CommandID).Output, "got-int")
	})
	require.Equal(t, "running", c.command("f", sig.CommandID).Status)
	resp, body = c.call(http.MethodPost, path+"/signal", map[string]string{"signal": "STOP"})
	requireErr(t, resp, body, http.StatusBadRequest, "invalid_signal")

	// DELETE kills it: SIGTERM, recorded as killed.
	resp, body = c.call(http.MethodDelete, path, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var killed commandJSON
	require.NoError(t, json.Unmarshal(body, &killed))
	require.Equal(t, "killed", killed.Status)
	require.Equal(t, 143, exitCode(t, killed.ExitCode))
	resp, body = c.call(http.MethodDelete, path, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	resp, body = c.call(http.MethodPost, path+"/signal", map[string]string{"signal": "TERM"})
	requireErr(t, resp, body, http.StatusConflict, "command_not_running")

	// A kill right after the start, before the command's processes exist.
	quick := c.startCommand("f", map[string]any{"command": "sleep 300"})
	resp, body = c.call(http.MethodDelete, "/v1/threads/f/commands/"+quick.CommandID, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, &killed))
	require.Equal(t, "killed", killed.Status, string(body))

	// KILL ends the command and everything it started, at once.
	k := c.startCommand("f", map[string]any{"command": "trap '' TERM; sleep 1001 & echo x; wait"})
	testenv.Eventually(t, 30*time.Second, "the command's first output", func() bool {
		return c.output("f", k.CommandID).Output == "x\n"
	})
	resp, body = c.call(http.MethodPost, "/v1/threads/f/commands/"+k.CommandID+"/signal", map[string]string{"signal": "KILL"})
	require.Equal(t, http.StatusNoContent, resp.StatusCode, string(body))
	got := c.waitCommand("f", k.CommandID, 10*time.Second)
	require.Equal(t, "exited", got.Command.Status)
	require.Equal(t, 137, exitCode(t, got.Command.ExitCode))
	count := `for p in /proc/[0-9]*; do { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null; echo; done | grep -c -x 'sleep 1001 ' || true`
	require.Equal(t, "0\n", c.exec("f", count).Output, "a process of the killed command survived")
}

// Commands are their thread's: another user's (even on a thread of the same
// id) and another thread's are 404, and deleting the thread ends them.
func TestBackgroundCommandIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Second})
	a := newTC(t, env, env.UserKey)
	b := newTC(t, env, env.Key("other-"+env.UserID, false))
	a.create("t1")
	a.create("t2")
	b.create("t1")
	cmd := a.startCommand("t1", map[string]any{"command": "sleep 30"})

	for _, who := range []struct {
		c      tc
		thread string
	}{{b, "t1"}, {a, "t2"}} {
		base := "/v1/threads/" + who.thread + "/commands/" + cmd.CommandID
		for _, r := range []struct {
			method, path string
			body         any
		}{
			{http.MethodGet, base, nil},
			{http.MethodGet, base + "/output", nil},
			{http.MethodGet, base + "/output?follow=true", nil},
			{http.MethodPost, base + "/signal", map[string]string{"signal": "KILL"}},
			{http.MethodDelete, base, nil},
		} {
			resp, body := who.c.call(r.method, r.path, r.body)
			requireErr(t, resp, body, http.StatusNotFound, "not_found")
		}
		resp, body := who.c.call(http.MethodGet, "/v1/threads/"+who.thread+"/commands", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		require.JSONEq(t, `{"commands":[]}`, string(body))
	}
	for _, id := range []string{"cmd-nope", "cmd-00000000-0000-0000-0000-000000000000"} {
		resp, body := a.call(http.MethodGet, "/v1/threads/t1/commands/"+id, nil)
		requireErr(t, resp, body, http.StatusNotFound, "not_found")
	}
	require.Equal(t, "running", a.command("t1", cmd.CommandID).Status, "the command ran on")

	// Deleting the thread ends its commands; a new life of it has none.
	resp, body := a.call(http.MethodDelete, "/v1/threads/t1", nil)
	require.Contains(t, []int{http.StatusNoContent, http.StatusAccepted}, resp.StatusCode, string(body))
	resp, body = a.call(http.MethodGet, "/v1/threads/t1/commands/"+cmd.CommandID, nil)
	requireErr(t, resp, body, http.StatusNotFound, "not_found")
	a.create("t1")
	resp, body = a.call(http.MethodGet, "/v1/threads/t1/commands", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.JSONEq(t, `{"commands":[]}`, string(body))
}

// A streamed exec answers NDJSON as the command prints, ending with its exit
// code; a client that leaves does not stop it, unless it asked to.
func TestStreamedExec(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: 10 * time.Second})
	c := newTC(t, env, env.UserKey)
	c.create("s")

	resp, next := c.stream(http.MethodPost, "/v1/threads/s/exec", map[string]any{"command": "echo first; sleep 2; echo second >&2; exit 5"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	events := readAll(next)
	resp.Body.Close()
	require.GreaterOrEqual(t, len(events), 3, "%+v", events)
	require.Equal(t, "command", events[0].Type, "%+v", events)
	require.Equal(t, "running", events[0].Command.Status)
	require.Equal(t, "output", events[1].Type)
	require.Equal(t, "first\n", events[1].Data)
	last := events[len(events)-1]
	require.Equal(t, "exit", last.Type, "%+v", events)
	require.Equal(t, 5, exitCode(t, last.ExitCode))
	require.False(t, last.TimedOut)
	require.Equal(t, "first\nsecond\n", outputOf(events))
	require.GreaterOrEqual(t, last.at.Sub(events[1].at), 1500*time.Millisecond, "the first chunk arrived only at the end")
	// It is a command of the thread, which can be followed again.
	require.Equal(t, "exited", c.command("s", events[0].Command.CommandID).Status)

	// A client that leaves: the command runs on.
	resp, next = c.stream(http.MethodPost, "/v1/threads/s/exec", map[string]any{"command": "echo go; sleep 2; echo done > ~/kept"})
	first, _ := next()
	e, _ := next()
	require.Equal(t, "go\n", e.Data)
	resp.Body.Close()
	got := c.waitCommand("s", first.Command.CommandID, 15*time.Second)
	require.Equal(t, "exited", got.Command.Status)
	require.Equal(t, "done\n", c.exec("s", "cat ~/kept").Output)

	// With kill_on_disconnect it is stopped.
	start := time.Now()
	resp, next = c.stream(http.MethodPost, "/v1/threads/s/exec", map[string]any{"command": "echo go; sleep 3; echo done > ~/killed", "kill_on_disconnect": true})
	first, _ = next()
	e, _ = next()
	require.Equal(t, "go\n", e.Data)
	resp.Body.Close()
	got = c.waitCommand("s", first.Command.CommandID, 15*time.Second)
	require.Equal(t, "killed", got.Command.Status)
	time.Sleep(time.Until(start.Add(4 * time.Second)))
	require.Equal(t, 1, c.exec("s", "test -e ~/killed").ExitCode, "the command went on after its client left")

	// kill_on_disconnect is the streamed exec's.
	resp2, body := c.call(http.MethodPost, "/v1/threads/s/exec", map[string]any{"command": "true", "kill_on_disconnect": true})
	requireErr(t, resp2, body, http.StatusBadRequest, "invalid_parameter")

	// Plain exec waits for a background job that holds its output, and not
	// for one that does not (the contract's advice).
	start = time.Now()
	require.Equal(t, "hi\n", c.exec("s", "echo hi; sleep 2 &").Output)
	require.GreaterOrEqual(t, time.Since(start), 2*time.Second)
	// The job lasts far longer than any loaded machine takes to answer an
	// echo: an answer before it ends shows the exec did not wait for it.
	start = time.Now()
	require.Equal(t, "hi\n", c.exec("s", "echo hi; sleep 60 >/dev/null 2>&1 &").Output)
	require.Less(t, time.Since(start), 30*time.Second)
}

// threadbox does not rely on Daytona's log stream closing when a command
// ends (some daemons follow a log like tail -f, until the session goes): a
// follow still ends with the whole output and the exit code, and the
// command's end is recorded (and its lease released) without anyone asking.
func TestBackgroundCommandWhenTheLogStreamOutlivesIt(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: 2 * time.Second, AutoDelete: time.Minute,
		Faults: emulator.Faults{FollowUntilDeleted: true}})
	c := newTC(t, env, env.UserKey)
	_, th := c.create("tail")
	sb := *th.SandboxID

	cmd := c.startCommand("tail", map[string]any{"command": "echo a; sleep 3; echo b; exit 6", "timeout_s": 120})
	start := time.Now()
	events := c.follow("tail", cmd.CommandID)
	require.Less(t, time.Since(start), 20*time.Second, "the follow waited for the stream, not the command")
	require.Equal(t, "a\nb\n", outputOf(events))
	require.NotEmpty(t, events)
	last := events[len(events)-1]
	require.Equal(t, "exit", last.Type, "%+v", events)
	require.Equal(t, 6, exitCode(t, last.ExitCode))

	// Nobody reads the second one: its end is recorded, its lease released.
	other := c.startCommand("tail", map[string]any{"command": "sleep 3; echo done", "timeout_s": 120})
	testenv.Eventually(t, 45*time.Second, "the sandbox to idle out once the command ended", func() bool {
		return sandboxState(t, env, sb) == daytona.StateStopped
	})
	got := c.output("tail", other.CommandID)
	require.Equal(t, "exited", got.Command.Status)
	require.Equal(t, "done\n", got.Output)
}
