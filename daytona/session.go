package daytona

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	toolbox "github.com/daytonaio/daytona/libs/toolbox-api-client-go"
	"github.com/gorilla/websocket"

	"github.com/threadbox/threadbox/internal/sessionlog"
)

// Sessions are Daytona's way to run commands that outlive one request
// (toolbox /process/session). A session is one long-lived bash in the
// sandbox: `cd` and `export` carry over from one command to the next, and
// its commands run one after the other, so an async command occupies its
// session until it ends (give each background command its own session).
// Daytona keeps every command's output in a log the session owns; it stays
// readable after the command ended, until the session is deleted.
//
// Stopping a command: the v0.190.0 daemon has no route to signal one
// session command (TerminateSessionCommand came later), and deleting the
// session only kills the session shell's process group. A command started
// with Stoppable runs instead in a process group of its own (setsid) whose
// id it writes to /tmp/threadbox-sessions/SESSION.pgid inside the sandbox;
// StopSessionCommand then runs `kill` in the sandbox (through Exec) on that
// group: SIGTERM, then SIGKILL after the grace period. Everything the
// command started goes with it unless it moved itself to another process
// group (setsid, a daemonizing server); the file is removed when the
// command ends, so a later stop cannot hit a recycled id. It needs
// util-linux's setsid (with -w) in the image, as Daytona's default has.

// sessionIDRe keeps session ids usable in a URL path and as a file name.
var sessionIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// pgidDir is where stoppable commands record their process group.
const pgidDir = "/tmp/threadbox-sessions"

// SessionExecRequest is one command run in a session.
type SessionExecRequest struct {
	Command string
	// Async returns as soon as Daytona accepted the command, with its id only;
	// follow it with GetSessionCommand and the logs.
	Async bool
	// Stoppable runs the command in a process group of its own that
	// StopSessionCommand can end. At most one stoppable command per session
	// runs at a time (a session runs its commands in turn).
	Stoppable bool
}

// SessionExecResult is a command Daytona accepted. For a synchronous one,
// ExitCode is set and the output is complete; for an async one only
// CommandID is.
type SessionExecResult struct {
	CommandID string
	ExitCode  *int
	// Output is stdout and stderr as Daytona interleaved them (line by line).
	Output         string
	Stdout, Stderr string
}

// SessionCommand is a command of a session; ExitCode is nil while it runs.
type SessionCommand struct {
	ID       string
	Command  string
	ExitCode *int
}

// SessionLogs is what a session command printed so far.
type SessionLogs struct {
	Output         string
	Stdout, Stderr string
}

// checkSessionID refuses ids Daytona would turn into paths we did not mean.
func checkSessionID(op, id string) error {
	if !sessionIDRe.MatchString(id) {
		return &Error{Kind: ErrBadRequest, Op: op, Message: fmt.Sprintf("invalid session id %q", id)}
	}
	return nil
}

// CreateSession starts a session. An existing id is ErrConflict.
func (t *Toolbox) CreateSession(ctx context.Context, sessionID string) error {
	const op = "create session"
	if err := checkSessionID(op, sessionID); err != nil {
		return err
	}
	ctx, cancel := t.shortCtx(ctx)
	defer cancel()
	resp, err := t.api.ProcessAPI.CreateSession(ctx).Request(toolbox.CreateSessionRequest{SessionId: sessionID}).Execute()
	return mapErr(op, classPlain, resp, err)
}

// DeleteSession ends a session: Daytona kills its shell's process group
// (and with it the command running in it, unless that command was started
// Stoppable: stop it first) and drops its logs. A missing session is
// ErrNotFound.
func (t *Toolbox) DeleteSession(ctx context.Context, sessionID string) error {
	const op = "delete session"
	if err := checkSessionID(op, sessionID); err != nil {
		return err
	}
	ctx, cancel := t.shortCtx(ctx)
	defer cancel()
	resp, err := t.api.ProcessAPI.DeleteSession(ctx, sessionID).Execute()
	return mapErr(op, classPlain, resp, err)
}

// ExecuteSessionCommand runs a command in a session. Synchronously, it
// returns when the command ended and every process holding its output
// closed it; only ctx bounds the wait, and giving up does not stop the
// command (it belongs to the session). A missing session is ErrNotFound.
func (t *Toolbox) ExecuteSessionCommand(ctx context.Context, sessionID string, r SessionExecRequest) (SessionExecResult, error) {
	const op = "execute session command"
	if err := checkSessionID(op, sessionID); err != nil {
		return SessionExecResult{}, err
	}
	if strings.TrimSpace(r.Command) == "" {
		return SessionExecResult{}, &Error{Kind: ErrBadRequest, Op: op, Message: "command is empty"}
	}
	cmd := r.Command
	if r.Stoppable {
		cmd = stoppable(sessionID, cmd)
	}
	if r.Async {
		var cancel context.CancelFunc
		ctx, cancel = t.shortCtx(ctx)
		defer cancel()
	}
	req := toolbox.SessionExecuteRequest{Command: cmd, RunAsync: ptr(r.Async)}
	res, resp, err := t.api.ProcessAPI.SessionExecuteCommand(ctx, sessionID).Request(req).Execute()
	if err != nil {
		return SessionExecResult{}, mapErr(op, classPlain, resp, err)
	}
	out := SessionExecResult{CommandID: res.GetCmdId()}
	if res.ExitCode != nil {
		code := int(*res.ExitCode)
		out.ExitCode = &code
	}
	out.Output = string(sessionlog.Strip([]byte(res.GetOutput())))
	out.Stdout, out.Stderr = res.GetStdout(), res.GetStderr()
	if res.Stdout == nil && res.Stderr == nil && res.Output != nil {
		// A daemon that did not split them: the markers still tell the streams apart.
		so, se := sessionlog.Demux([]byte(res.GetOutput()))
		out.Stdout, out.Stderr = string(so), string(se)
	}
	return out, nil
}

// stoppable wraps a command so that it runs in its own process group (and
// session) and records the group id for StopSessionCommand while it runs.
func stoppable(sessionID, command string) string {
	pgidFile := pgidDir + "/" + sessionID + ".pgid"
	script := `echo $$ > "$1" || exit 125; /bin/bash -c "$2"; rc=$?; rm -f "$1"; exit $rc`
	return "mkdir -p " + pgidDir + " && setsid -w /bin/sh -c " + shellQuote(script) +
		" threadbox-session " + shellQuote(pgidFile) + " " + shellQuote(command)
}

// StopSessionCommand ends the Stoppable command running in a session: its
// process group gets SIGTERM, then SIGKILL if it is still there after
// grace. It reports whether a command was running; stopping one that
// already ended is not an error.
func (t *Toolbox) StopSessionCommand(ctx context.Context, sessionID string, grace time.Duration) (bool, error) {
	const op = "stop session command"
	if err := checkSessionID(op, sessionID); err != nil {
		return false, err
	}
	tenths := int(grace / (100 * time.Millisecond))
	script := fmt.Sprintf(`f=%s
pg=$(cat "$f" 2>/dev/null) || { echo none; exit 0; }
case "$pg" in ''|*[!0-9]*) rm -f "$f"; echo none; exit 0 ;; esac
[ "$pg" -gt 1 ] && kill -TERM -- "-$pg" 2>/dev/null || { rm -f "$f"; echo none; exit 0; }
i=0
while [ "$i" -lt %d ] && kill -0 -- "-$pg" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
kill -KILL -- "-$pg" 2>/dev/null
rm -f "$f"
echo stopped`, shellQuote(pgidDir+"/"+sessionID+".pgid"), tenths)
	res, err := t.Exec(ctx, ExecRequest{Command: script, Timeout: grace + 30*time.Second})
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(res.Output) {
	case "stopped":
		return true, nil
	case "none":
		return false, nil
	}
	return false, &Error{Kind: ErrUnavailable, Op: op, Message: "unexpected answer from the sandbox: " + res.Output}
}

// GetSessionCommand describes a command of a session (ErrNotFound for an
// unknown session or command).
func (t *Toolbox) GetSessionCommand(ctx context.Context, sessionID, commandID string) (SessionCommand, error) {
	const op = "get session command"
	if err := checkSessionID(op, sessionID); err != nil {
		return SessionCommand{}, err
	}
	ctx, cancel := t.shortCtx(ctx)
	defer cancel()
	c, resp, err := t.api.ProcessAPI.GetSessionCommand(ctx, sessionID, commandID).Execute()
	if err != nil {
		return SessionCommand{}, mapErr(op, classPlain, resp, err)
	}
	out := SessionCommand{ID: c.Id, Command: c.Command}
	if c.ExitCode != nil {
		code := int(*c.ExitCode)
		out.ExitCode = &code
	}
	return out, nil
}

// SessionCommandLogs returns what a command printed so far. Daytona answers
// JSON with the streams apart to SDKs it knows, plain text to older ones;
// both are read.
func (t *Toolbox) SessionCommandLogs(ctx context.Context, sessionID, commandID string) (SessionLogs, error) {
	const op = "session command logs"
	if err := checkSessionID(op, sessionID); err != nil {
		return SessionLogs{}, err
	}
	ctx, cancel := t.shortCtx(ctx)
	defer cancel()
	req, err := t.newRequest(ctx, http.MethodGet, t.endpoint(logsPath(sessionID, commandID), nil), nil)
	if err != nil {
		return SessionLogs{}, &Error{Kind: ErrBadRequest, Op: op, Err: err}
	}
	req.Header.Set("Accept", "application/json, text/plain")
	resp, err := t.do(op, classPlain, req)
	if err != nil {
		return SessionLogs{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return SessionLogs{}, mapErr(op, classPlain, nil, err)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		var l toolbox.SessionCommandLogsResponse
		if err := json.Unmarshal(body, &l); err != nil {
			return SessionLogs{}, &Error{Kind: ErrUnavailable, Op: op, Status: resp.StatusCode, Message: "undecodable response", Err: err}
		}
		return SessionLogs{Output: string(sessionlog.Strip([]byte(l.Output))), Stdout: l.Stdout, Stderr: l.Stderr}, nil
	}
	so, se := sessionlog.Demux(body)
	return SessionLogs{Output: string(sessionlog.Strip(body)), Stdout: string(so), Stderr: string(se)}, nil
}

func logsPath(sessionID, commandID string) string {
	return "/process/session/" + url.PathEscape(sessionID) + "/command/" + url.PathEscape(commandID) + "/logs"
}

// FollowSessionCommandLogs streams a command's output (stdout and stderr
// interleaved, as Daytona wrote them) from the start: Read returns new
// output as it comes and io.EOF once the command ended. ctx bounds the
// whole stream; Close ends it early. Daytona serves the stream over a
// WebSocket (follow=true).
func (t *Toolbox) FollowSessionCommandLogs(ctx context.Context, sessionID, commandID string) (io.ReadCloser, error) {
	const op = "follow session command logs"
	if err := checkSessionID(op, sessionID); err != nil {
		return nil, err
	}
	u, err := url.Parse(t.endpoint(logsPath(sessionID, commandID), url.Values{"follow": {"true"}}))
	if err != nil {
		return nil, &Error{Kind: ErrBadRequest, Op: op, Err: err}
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	hdr := http.Header{"User-Agent": {"threadbox"}}
	for k, v := range t.headers() {
		hdr.Set(k, v)
	}
	dialer := websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: t.g.cfg.ToolboxTimeout}
	conn, resp, err := dialer.DialContext(ctx, u.String(), hdr)
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil, statusErr(op, classPlain, resp, body)
		}
		return nil, &Error{Kind: ErrUnavailable, Op: op, Err: err}
	}
	ls := &logStream{op: op, conn: conn, ctx: ctx}
	ls.stopWatch = context.AfterFunc(ctx, func() { _ = conn.Close() })
	return ls, nil
}

// logStream turns the WebSocket's messages into a byte stream without the
// stream markers.
type logStream struct {
	op        string
	conn      *websocket.Conn
	ctx       context.Context
	stopWatch func() bool
	strip     sessionlog.Stripper
	buf       []byte
	err       error
}

func (l *logStream) Read(p []byte) (int, error) {
	for len(l.buf) == 0 && l.err == nil {
		_, msg, err := l.conn.ReadMessage()
		switch {
		case err == nil:
			l.buf = l.strip.Next(msg)
		case websocket.IsCloseError(err, websocket.CloseNormalClosure):
			l.buf, l.err = l.strip.Flush(), io.EOF
		case l.ctx.Err() != nil:
			l.err = l.ctx.Err()
		default:
			var ce *websocket.CloseError
			msg := "log stream broken"
			if errors.As(err, &ce) {
				msg = fmt.Sprintf("log stream closed with code %d", ce.Code)
			}
			l.err = &Error{Kind: ErrUnavailable, Op: l.op, Message: msg, Err: err}
		}
	}
	n := copy(p, l.buf)
	l.buf = l.buf[n:]
	if n > 0 {
		return n, nil
	}
	return 0, l.err
}

// Close ends the stream (the command keeps running).
func (l *logStream) Close() error {
	l.stopWatch()
	return l.conn.Close()
}

// shellQuote quotes s as one POSIX shell word.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
