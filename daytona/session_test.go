package daytona

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// waitCommand polls a session command until it ended.
func waitCommand(t *testing.T, tb *Toolbox, session, id string) SessionCommand {
	t.Helper()
	ctx := testCtx(t)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := tb.GetSessionCommand(ctx, session, id)
		if err != nil {
			t.Fatalf("get command: %v", err)
		}
		if c.ExitCode != nil {
			return c
		}
	}
	t.Fatalf("command %s of %s did not end", id, session)
	return SessionCommand{}
}

// countProcesses counts the sandbox's processes whose command line is exactly cmdline.
func countProcesses(t *testing.T, tb *Toolbox, cmdline string) string {
	t.Helper()
	res, err := tb.Exec(testCtx(t), ExecRequest{Command: `for p in /proc/[0-9]*; do tr '\0' ' ' 2>/dev/null < "$p/cmdline"; echo; done | grep -c -x '` + cmdline + ` ' || true`})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(res.Output)
}

func TestSessions(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	_, tb := newSandbox(t, e, "tb-agent-sessions-1", CreateSandboxParams{})

	if err := tb.CreateSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, tb.CreateSession(ctx, "s1"), ErrConflict, "second create")
	wantKind(t, tb.CreateSession(ctx, "../etc"), ErrBadRequest, "a session id that is not a name")

	// Synchronous commands share the session's shell.
	if _, err := tb.ExecuteSessionCommand(ctx, "s1", SessionExecRequest{Command: "cd /tmp && export X=42"}); err != nil {
		t.Fatal(err)
	}
	res, err := tb.ExecuteSessionCommand(ctx, "s1", SessionExecRequest{Command: "pwd; echo $X; echo oops >&2; sh -c 'exit 4'"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode == nil || *res.ExitCode != 4 || res.Stdout != "/tmp\n42\n" || res.Stderr != "oops\n" {
		t.Fatalf("sync result: %+v", res)
	}
	// Output merges stdout and stderr as they arrive: their order is the
	// scheduler's, so only each stream's own lines are checked.
	if strings.ContainsAny(res.Output, "\x01\x02") || !strings.Contains(res.Output, "/tmp\n") || !strings.Contains(res.Output, "42\n") || !strings.Contains(res.Output, "oops\n") {
		t.Fatalf("output without markers: %q", res.Output)
	}

	// Async: an id at once, logs so far, a follow stream to the end.
	res, err = tb.ExecuteSessionCommand(ctx, "s1", SessionExecRequest{Command: "echo one; sleep 1; echo two", Async: true})
	if err != nil || res.CommandID == "" || res.ExitCode != nil {
		t.Fatalf("async: %+v %v", res, err)
	}
	c, err := tb.GetSessionCommand(ctx, "s1", res.CommandID)
	if err != nil || c.ExitCode != nil || c.Command != "echo one; sleep 1; echo two" {
		t.Fatalf("running command: %+v %v", c, err)
	}
	stream, err := tb.FollowSessionCommandLogs(ctx, "s1", res.CommandID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(stream)
	stream.Close()
	if err != nil || string(got) != "one\ntwo\n" {
		t.Fatalf("followed: %q %v", got, err)
	}
	c = waitCommand(t, tb, "s1", res.CommandID)
	if *c.ExitCode != 0 {
		t.Fatalf("exit: %d", *c.ExitCode)
	}
	logs, err := tb.SessionCommandLogs(ctx, "s1", res.CommandID)
	if err != nil || logs.Stdout != "one\ntwo\n" || logs.Stderr != "" || logs.Output != "one\ntwo\n" {
		t.Fatalf("logs: %+v %v", logs, err)
	}

	// Unknown session or command.
	_, err = tb.GetSessionCommand(ctx, "s1", "nope")
	wantKind(t, err, ErrNotFound, "unknown command")
	_, err = tb.ExecuteSessionCommand(ctx, "nope", SessionExecRequest{Command: "true"})
	wantKind(t, err, ErrNotFound, "unknown session")
	_, err = tb.FollowSessionCommandLogs(ctx, "nope", res.CommandID)
	wantKind(t, err, ErrNotFound, "follow in an unknown session")

	if err := tb.DeleteSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, tb.DeleteSession(ctx, "s1"), ErrNotFound, "second delete")
	_, err = tb.SessionCommandLogs(ctx, "s1", res.CommandID)
	wantKind(t, err, ErrNotFound, "logs of a deleted session")
}

// A stoppable command and everything it started end with
// StopSessionCommand: SIGTERM to its process group.
func TestSessionStoppableCommand(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	_, tb := newSandbox(t, e, "tb-agent-sessions-2", CreateSandboxParams{})
	if err := tb.CreateSession(ctx, "bg"); err != nil {
		t.Fatal(err)
	}
	if stopped, err := tb.StopSessionCommand(ctx, "bg", time.Second); err != nil || stopped {
		t.Fatalf("nothing to stop yet: %v %v", stopped, err)
	}
	res, err := tb.ExecuteSessionCommand(ctx, "bg", SessionExecRequest{
		Command: "sleep 3022 & echo started; sleep 3021; echo never > ~/never.txt", Async: true, Stoppable: true})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); countProcesses(t, tb, "sleep 3021") != "1"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the command did not start")
		}
	}
	if n := countProcesses(t, tb, "sleep 3022"); n != "1" {
		t.Fatalf("its background child: %s", n)
	}
	stopped, err := tb.StopSessionCommand(ctx, "bg", 2*time.Second)
	if err != nil || !stopped {
		t.Fatalf("stop: %v %v", stopped, err)
	}
	c := waitCommand(t, tb, "bg", res.CommandID)
	if *c.ExitCode != 143 {
		t.Fatalf("a command ended by SIGTERM exits 143, got %d", *c.ExitCode)
	}
	if n := countProcesses(t, tb, "sleep 3021"); n != "0" {
		t.Fatalf("the command survived: %s", n)
	}
	if n := countProcesses(t, tb, "sleep 3022"); n != "0" {
		t.Fatalf("its background child survived: %s", n)
	}
	if _, err := tb.Stat(ctx, "/home/daytona/never.txt"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the command went on: %v", err)
	}
	if stopped, err := tb.StopSessionCommand(ctx, "bg", time.Second); err != nil || stopped {
		t.Fatalf("stopping again: %v %v", stopped, err)
	}

	// The session stays usable, and a stoppable command that ends on its own
	// leaves nothing to stop.
	res, err = tb.ExecuteSessionCommand(ctx, "bg", SessionExecRequest{Command: "echo done", Stoppable: true})
	if err != nil || res.ExitCode == nil || *res.ExitCode != 0 || res.Stdout != "done\n" {
		t.Fatalf("a stoppable sync command: %+v %v", res, err)
	}
	if stopped, err := tb.StopSessionCommand(ctx, "bg", time.Second); err != nil || stopped {
		t.Fatalf("after it ended: %v %v", stopped, err)
	}
}

// A follow stream ends with its context.
func TestSessionFollowCancelled(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	_, tb := newSandbox(t, e, "tb-agent-sessions-3", CreateSandboxParams{})
	if err := tb.CreateSession(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	res, err := tb.ExecuteSessionCommand(ctx, "f", SessionExecRequest{Command: "echo tick; sleep 30", Async: true})
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	stream, err := tb.FollowSessionCommandLogs(fctx, "f", res.CommandID)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(stream, buf); err != nil || string(buf) != "tick\n" {
		t.Fatalf("first output: %q %v", buf, err)
	}
	cancel()
	if _, err := stream.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
}

// waitLogs polls a session command's logs until they contain want.
func waitLogs(t *testing.T, tb *Toolbox, session, id, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		logs, err := tb.SessionCommandLogs(testCtx(t), session, id)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logs.Output, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs never showed %q: %q", want, logs.Output)
		}
	}
}

// A stoppable command's Timeout holds in the sandbox: at the timeout its
// process group gets SIGTERM (exit 124), and what ignores SIGTERM gets
// SIGKILL SessionKillAfter later (exit 137).
func TestSessionCommandTimeout(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	_, tb := newSandbox(t, e, "tb-agent-sessions-4", CreateSandboxParams{})
	for _, s := range []string{"t1", "t2"} {
		if err := tb.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	res, err := tb.ExecuteSessionCommand(ctx, "t1", SessionExecRequest{
		Command: "echo before; sleep 3031 & sleep 3030; echo never", Async: true, Stoppable: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := waitCommand(t, tb, "t1", res.CommandID)
	if *c.ExitCode != 124 {
		t.Fatalf("a command cut by its timeout exits 124, got %d", *c.ExitCode)
	}
	if d := time.Since(start); d < time.Second || d > 4*time.Second {
		t.Fatalf("ended after %s with a 1s timeout", d)
	}
	for _, p := range []string{"sleep 3030", "sleep 3031"} {
		if n := countProcesses(t, tb, p); n != "0" {
			t.Fatalf("%s survived its timeout: %s", p, n)
		}
	}
	if logs, err := tb.SessionCommandLogs(ctx, "t1", res.CommandID); err != nil || logs.Output != "before\n" {
		t.Fatalf("logs: %+v %v", logs, err)
	}

	res, err = tb.ExecuteSessionCommand(ctx, "t2", SessionExecRequest{
		Command: "trap '' TERM; sleep 3032", Async: true, Stoppable: true, Timeout: time.Second, MaxOutput: 100})
	if err != nil {
		t.Fatal(err)
	}
	c = waitCommand(t, tb, "t2", res.CommandID)
	if *c.ExitCode != 137 {
		t.Fatalf("a command that ignores SIGTERM is killed (137), got %d", *c.ExitCode)
	}
	if n := countProcesses(t, tb, "sleep 3032"); n != "0" {
		t.Fatalf("it survived: %s", n)
	}

	_, err = tb.ExecuteSessionCommand(ctx, "t2", SessionExecRequest{Command: "true", Timeout: time.Second})
	wantKind(t, err, ErrBadRequest, "a timeout without Stoppable")
}

// MaxOutput bounds what reaches Daytona's log; the command runs on, without
// a broken pipe, to its own end.
func TestSessionCommandMaxOutput(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	_, tb := newSandbox(t, e, "tb-agent-sessions-5", CreateSandboxParams{})
	if err := tb.CreateSession(ctx, "o"); err != nil {
		t.Fatal(err)
	}
	res, err := tb.ExecuteSessionCommand(ctx, "o", SessionExecRequest{
		Command: "head -c 300000 /dev/zero | tr '\\0' a; echo; echo late >&2; echo done > ~/after.txt; exit 3",
		Async:   true, Stoppable: true, MaxOutput: 100})
	if err != nil {
		t.Fatal(err)
	}
	c := waitCommand(t, tb, "o", res.CommandID)
	if *c.ExitCode != 3 {
		t.Fatalf("exit code: %d", *c.ExitCode)
	}
	logs, err := tb.SessionCommandLogs(ctx, "o", res.CommandID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSuffix(logs.Output, "\n") != strings.Repeat("a", 100) {
		t.Fatalf("kept output: %d bytes %q…", len(logs.Output), logs.Output[:min(len(logs.Output), 20)])
	}
	if _, err := tb.Stat(ctx, "/home/daytona/after.txt"); err != nil {
		t.Fatalf("the command did not run to its end: %v", err)
	}

	// Its working directory and environment.
	res, err = tb.ExecuteSessionCommand(ctx, "o", SessionExecRequest{
		Command: `pwd; echo "$X|$Y"`, Async: true, Stoppable: true, MaxOutput: 100,
		Cwd: "/tmp", Env: map[string]string{"X": "a b'c", "Y": "$HOME"}})
	if err != nil {
		t.Fatal(err)
	}
	waitCommand(t, tb, "o", res.CommandID)
	if logs, err := tb.SessionCommandLogs(ctx, "o", res.CommandID); err != nil || logs.Output != "/tmp\na b'c|$HOME\n" {
		t.Fatalf("cwd and env: %q %v", logs.Output, err)
	}
	_, err = tb.ExecuteSessionCommand(ctx, "o", SessionExecRequest{Command: "true", Stoppable: true, Env: map[string]string{"A;rm": "x"}})
	wantKind(t, err, ErrBadRequest, "an env name that is not a name")
}

// A signal reaches the command and leaves threadbox's wrapper alone: a
// command that handles SIGINT goes on and can still be stopped; KILL ends
// the whole group at once.
func TestSessionSignalCommand(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	_, tb := newSandbox(t, e, "tb-agent-sessions-6", CreateSandboxParams{})
	for _, s := range []string{"s1", "s2"} {
		if err := tb.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if sent, err := tb.SignalSessionCommand(ctx, "s1", SIGINT); err != nil || sent {
		t.Fatalf("nothing to signal yet: %v %v", sent, err)
	}
	_, err := tb.SignalSessionCommand(ctx, "s1", Signal("STOP"))
	wantKind(t, err, ErrBadRequest, "a signal not offered")

	res, err := tb.ExecuteSessionCommand(ctx, "s1", SessionExecRequest{
		Command: "trap 'echo got-int' INT; echo ready; while :; do sleep 0.1; done",
		Async:   true, Stoppable: true, Timeout: time.Minute, MaxOutput: 1000})
	if err != nil {
		t.Fatal(err)
	}
	waitLogs(t, tb, "s1", res.CommandID, "ready")
	if sent, err := tb.SignalSessionCommand(ctx, "s1", SIGINT); err != nil || !sent {
		t.Fatalf("signal: %v %v", sent, err)
	}
	waitLogs(t, tb, "s1", res.CommandID, "got-int")
	time.Sleep(300 * time.Millisecond)
	if c, err := tb.GetSessionCommand(ctx, "s1", res.CommandID); err != nil || c.ExitCode != nil {
		t.Fatalf("a command that handles SIGINT goes on: %+v %v", c, err)
	}
	if stopped, err := tb.StopSessionCommand(ctx, "s1", 2*time.Second); err != nil || !stopped {
		t.Fatalf("stop after a signal: %v %v", stopped, err)
	}
	if c := waitCommand(t, tb, "s1", res.CommandID); *c.ExitCode != 143 {
		t.Fatalf("stopped: %d", *c.ExitCode)
	}

	res, err = tb.ExecuteSessionCommand(ctx, "s2", SessionExecRequest{
		Command: "sleep 3041 & trap '' TERM; sleep 3040", Async: true, Stoppable: true, Timeout: time.Minute, MaxOutput: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); countProcesses(t, tb, "sleep 3040") != "1"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the command did not start")
		}
	}
	if sent, err := tb.SignalSessionCommand(ctx, "s2", SIGKILL); err != nil || !sent {
		t.Fatalf("kill: %v %v", sent, err)
	}
	if c := waitCommand(t, tb, "s2", res.CommandID); *c.ExitCode != 137 {
		t.Fatalf("killed: %d", *c.ExitCode)
	}
	for _, p := range []string{"sleep 3040", "sleep 3041"} {
		if n := countProcesses(t, tb, p); n != "0" {
			t.Fatalf("%s survived KILL: %s", p, n)
		}
	}
}

// The wrapper of a stoppable command records its process group with
// `echo $PPID > file`: the shell creates the file empty, then writes it. A
// signal or stop that reads the file in between must answer "nothing yet" and
// leave it; removing it unlinked the file the echo then wrote, and the command
// could never be reached (a kill right after a start answered 503 under load).
// Here the writer holds the empty file open for seconds, as a loaded machine
// might between the two steps.
func TestSessionGroupFileBeingWrittenIsLeftAlone(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	_, tb := newSandbox(t, e, "tb-agent-sessions-pgid", CreateSandboxParams{})
	const f = pgidDir + "/slow.pgid"
	// The writer runs in a session of its own (an exec would wait for it);
	// setsid: it leads a process group of its own, as timeout(1) does.
	if err := tb.CreateSession(ctx, "writer"); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.ExecuteSessionCommand(ctx, "writer", SessionExecRequest{Async: true,
		Command: `mkdir -p ` + pgidDir + ` && exec setsid sh -c 'exec 3>"$1"; sleep 4; echo $$ >&3; exec sleep 3050' slow-writer ` + f}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res, err := tb.Exec(ctx, ExecRequest{Command: `test -e ` + f + ` && echo there || true`})
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(res.Output) == "there" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer never created its file")
		}
	}
	// Read while the file is still empty (on a machine slow enough to be past
	// the write already, this finds the group: the test then shows less, it
	// does not fail).
	if _, err := tb.SignalSessionCommand(ctx, "slow", SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		sent, err := tb.SignalSessionCommand(ctx, "slow", SIGKILL)
		if err != nil {
			t.Fatal(err)
		}
		if sent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the group was never found: its file was removed while being written")
		}
	}
	for deadline := time.Now().Add(30 * time.Second); countProcesses(t, tb, "sleep 3050") != "0"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the killed group's process is still there")
		}
	}
}
