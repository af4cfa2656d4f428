package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
	toolbox "github.com/daytonaio/daytona/libs/toolbox-api-client-go"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/internal/sessionlog"
)

// sdkVersionHeader is what Daytona's SDKs send; with it the daemon keeps
// stdout and stderr apart and answers logs as JSON.
const sdkVersionHeader = "0.190.0"

// tbSDK is a toolbox client that names its SDK version, as the SDKs do.
func (e *env) tbSDK(sb *apiclient.Sandbox) *toolbox.APIClient {
	c := e.tb(sb)
	c.GetConfig().AddDefaultHeader("X-Daytona-SDK-Version", sdkVersionHeader)
	return c
}

// followLogs streams a command's log over the WebSocket the SDKs use,
// after validating the upgrade request against the document, and returns
// what arrived and how the stream was closed.
func (e *env) followLogs(sb *apiclient.Sandbox, session, cmd string, hdr http.Header) ([]byte, error) {
	e.t.Helper()
	u := e.hs.URL + "/toolbox/" + sb.Id + "/process/session/" + session + "/command/" + cmd + "/logs?follow=true"
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(e.t, err)
	require.Equal(e.t, "GetSessionCommandLogs", e.val.checkRequest(req))
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(u, "http"), hdr)
	require.NoError(e.t, err)
	defer conn.Close()
	require.Equal(e.t, http.StatusSwitchingProtocols, resp.StatusCode)
	var got []byte
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			return got, err
		}
		require.Equal(e.t, websocket.BinaryMessage, kind)
		got = append(got, msg...)
	}
}

func TestConformanceToolboxSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{Env: &map[string]string{"SANDBOX_VAR": "sv"}})
	p := e.tbSDK(sb).ProcessAPI
	old := e.tb(sb).ProcessAPI // no SDK version: combined output
	exec := func(session, cmd string, async bool) (*toolbox.SessionExecuteResponse, *http.Response) {
		t.Helper()
		res, resp, err := p.SessionExecuteCommand(e.ctx, session).Request(toolbox.SessionExecuteRequest{Command: cmd, RunAsync: toolbox.PtrBool(async)}).Execute()
		require.NoError(t, err)
		return res, resp
	}

	resp, err := p.CreateSession(e.ctx).Request(toolbox.CreateSessionRequest{SessionId: "s1"}).Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, err = p.CreateSession(e.ctx).Request(toolbox.CreateSessionRequest{SessionId: "s1"}).Execute()
	status, msg := apiErr(t, resp, err)
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "conflict: session already exists", msg)

	// A session is one shell: cd and export carry over to the next command.
	res, resp := exec("s1", "cd /tmp && export GREETING=hello", false)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int32(0), res.GetExitCode())
	res, _ = exec("s1", "pwd; echo $GREETING $SANDBOX_VAR $HOME; echo oops >&2; sh -c 'exit 3'", false)
	assert.Equal(t, int32(3), res.GetExitCode())
	assert.Equal(t, "/tmp\nhello sv /home/daytona\n", res.GetStdout())
	assert.Equal(t, "oops\n", res.GetStderr())
	assert.Contains(t, res.GetOutput(), "\x01\x01\x01/tmp\n", "output keeps the stream markers for SDK clients")
	// A client without an SDK version gets the output without markers, and no split.
	resC, _, err := old.SessionExecuteCommand(e.ctx, "s1").Request(toolbox.SessionExecuteRequest{Command: "echo plain"}).Execute()
	require.NoError(t, err)
	assert.Equal(t, "plain\n", resC.GetOutput())
	assert.Nil(t, resC.Stdout)

	// Async: 202 with the command id; the command then runs on its own.
	res, resp = exec("s1", "echo first; sleep 1; echo second; echo warn >&2", true)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	cmdID := res.GetCmdId()
	require.NotEmpty(t, cmdID)
	assert.Nil(t, res.ExitCode)
	c, _, err := p.GetSessionCommand(e.ctx, "s1", cmdID).Execute()
	require.NoError(t, err)
	assert.Nil(t, c.ExitCode, "still running")
	assert.Equal(t, "echo first; sleep 1; echo second; echo warn >&2", c.Command)
	require.Eventually(t, func() bool {
		logs, _, err := p.GetSessionCommandLogs(e.ctx, "s1", cmdID).Execute()
		return err == nil && logs.Stdout == "first\n"
	}, 30*time.Second, 20*time.Millisecond, "the log so far")
	// Follow: the stream ends, normally, when the command has ended.
	streamed, err := e.followLogs(sb, "s1", cmdID, http.Header{"X-Daytona-Sdk-Version": {sdkVersionHeader}})
	assert.True(t, websocket.IsCloseError(err, websocket.CloseNormalClosure), "closed normally: %v", err)
	// stdout and stderr are labelled by two readers: their lines may interleave either way.
	so, se := sessionlog.Demux(streamed)
	assert.Equal(t, "first\nsecond\n", string(so))
	assert.Equal(t, "warn\n", string(se))
	assert.Equal(t, len("first\nsecond\nwarn\n")+3*3, len(streamed), "every line marked")
	c, _, err = p.GetSessionCommand(e.ctx, "s1", cmdID).Execute()
	require.NoError(t, err)
	require.NotNil(t, c.ExitCode, "ended once the stream closed")
	assert.Equal(t, int32(0), c.GetExitCode())
	logs, _, err := p.GetSessionCommandLogs(e.ctx, "s1", cmdID).Execute()
	require.NoError(t, err)
	assert.Equal(t, "first\nsecond\n", logs.Stdout)
	assert.Equal(t, "warn\n", logs.Stderr)
	// Old clients: the log as plain text without markers, and a marker-free stream.
	code, body, hdr := e.plain(http.MethodGet, "/toolbox/"+sb.Id+"/process/session/s1/command/"+cmdID+"/logs", nil, nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "text/plain; charset=utf-8", hdr.Get("Content-Type"))
	lines := func(b []byte) []string { return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") }
	assert.True(t, strings.HasSuffix(string(body), "\n"))
	assert.ElementsMatch(t, []string{"first", "second", "warn"}, lines(body))
	streamed, err = e.followLogs(sb, "s1", cmdID, nil)
	assert.True(t, websocket.IsCloseError(err, websocket.CloseNormalClosure), "closed normally: %v", err)
	assert.ElementsMatch(t, []string{"first", "second", "warn"}, lines(streamed))

	// An async command keeps its stdin open for input.
	res, _ = exec("s1", "read -r line; echo got:$line", true)
	readID := res.GetCmdId()
	resp, err = p.SendInput(e.ctx, "s1", readID).Request(toolbox.SessionSendInputRequest{Data: "ping\n"}).Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Eventually(t, func() bool {
		c, _, err := p.GetSessionCommand(e.ctx, "s1", readID).Execute()
		return err == nil && c.ExitCode != nil
	}, 30*time.Second, 20*time.Millisecond)
	logs, _, err = p.GetSessionCommandLogs(e.ctx, "s1", readID).Execute()
	require.NoError(t, err)
	assert.Equal(t, "got:ping\n", logs.Stdout)

	// Get and list show the commands.
	s1, _, err := p.GetSession(e.ctx, "s1").Execute()
	require.NoError(t, err)
	assert.Equal(t, "s1", s1.SessionId)
	assert.Len(t, s1.Commands, 5)
	all, _, err := p.ListSessions(e.ctx).Execute()
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "s1", all[0].SessionId)

	// Deleting a session kills the command running in it.
	_, err = p.CreateSession(e.ctx).Request(toolbox.CreateSessionRequest{SessionId: "s2"}).Execute()
	require.NoError(t, err)
	exec("s2", "sleep 3017; echo never > /home/daytona/never.txt", true)
	require.Eventually(t, func() bool { return hostHasProcess(t, "sleep 3017") }, 30*time.Second, 20*time.Millisecond)
	resp, err = p.DeleteSession(e.ctx, "s2").Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Eventually(t, func() bool { return !hostHasProcess(t, "sleep 3017") }, 30*time.Second, 20*time.Millisecond)
	_, code = e.download(sb, "/home/daytona/never.txt")
	assert.Equal(t, http.StatusNotFound, code)

	// Errors, as the daemon words them.
	_, resp, err = p.GetSession(e.ctx, "s2").Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not found: session not found", msg)
	_, resp, err = p.SessionExecuteCommand(e.ctx, "nope").Request(toolbox.SessionExecuteRequest{Command: "true"}).Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)
	_, resp, err = p.SessionExecuteCommand(e.ctx, "s1").Request(toolbox.SessionExecuteRequest{Command: "  "}).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "bad request: command cannot be empty", msg)
	_, resp, err = p.GetSessionCommand(e.ctx, "s1", "nope").Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "not found: command not found", msg)
	raw, _ := json.Marshal(map[string]string{"sessionId": "../escape"})
	code, _, _ = e.raw(http.MethodPost, "/toolbox/"+sb.Id+"/process/session", bytes.NewReader(raw), map[string]string{"Content-Type": "application/json"})
	assert.Equal(t, http.StatusBadRequest, code)

	// Stopping the sandbox ends its sessions.
	_, _, err = e.api.SandboxAPI.StopSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STOPPED)
	_, _, err = e.api.SandboxAPI.StartSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STARTED)
	all, _, err = p.ListSessions(e.ctx).Execute()
	require.NoError(t, err)
	assert.Empty(t, all)
}

// Deleting a session ends a follow of its running command, normally, as the
// daemon's session context does (a stream must not outlive its session).
// With FollowUntilDeleted a follow outlives its command, as the daemon's
// tail-like follow does, until the session goes.
func TestConformanceToolboxSessionDeleteEndsFollow(t *testing.T) {
	t.Parallel()
	for _, untilDeleted := range []bool{false, true} {
		t.Run(fmt.Sprintf("FollowUntilDeleted=%v", untilDeleted), func(t *testing.T) {
			t.Parallel()
			testDeleteEndsFollow(t, untilDeleted)
		})
	}
}

func testDeleteEndsFollow(t *testing.T, untilDeleted bool) {
	e := newEnv(t, Options{Faults: Faults{FollowUntilDeleted: untilDeleted}})
	sb := e.create(apiclient.CreateSandbox{})
	p := e.tbSDK(sb).ProcessAPI
	_, err := p.CreateSession(e.ctx).Request(toolbox.CreateSessionRequest{SessionId: "gone"}).Execute()
	require.NoError(t, err)
	command := "echo started; sleep 30"
	if untilDeleted {
		command = "echo started"
	}
	res, _, err := p.SessionExecuteCommand(e.ctx, "gone").Request(toolbox.SessionExecuteRequest{Command: command, RunAsync: toolbox.PtrBool(true)}).Execute()
	require.NoError(t, err)
	type result struct {
		got []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := e.followLogs(sb, "gone", res.GetCmdId(), nil)
		done <- result{got, err}
	}()
	require.Eventually(t, func() bool {
		logs, _, err := p.GetSessionCommandLogs(e.ctx, "gone", res.GetCmdId()).Execute()
		return err == nil && logs.Stdout == "started\n"
	}, 30*time.Second, 20*time.Millisecond)
	if untilDeleted {
		require.Eventually(t, func() bool {
			c, _, err := p.GetSessionCommand(e.ctx, "gone", res.GetCmdId()).Execute()
			return err == nil && c.ExitCode != nil
		}, 30*time.Second, 20*time.Millisecond)
		select {
		case r := <-done:
			t.Fatalf("the follow ended with its command: %v", r.err)
		case <-time.After(time.Second):
		}
	}
	resp, err := p.DeleteSession(e.ctx, "gone").Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	select {
	case r := <-done:
		assert.True(t, websocket.IsCloseError(r.err, websocket.CloseNormalClosure), "closed normally: %v", r.err)
		assert.Equal(t, "started\n", string(r.got))
	case <-time.After(5 * time.Second):
		t.Fatal("the follow outlived its deleted session")
	}
}
