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
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
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
	for deadline := time.Now().Add(10 * time.Second); countProcesses(t, tb, "sleep 3021") != "1"; time.Sleep(20 * time.Millisecond) {
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
