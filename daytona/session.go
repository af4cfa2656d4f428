package daytona

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	toolbox "github.com/daytonaio/daytona/libs/toolbox-api-client-go"
	"github.com/gorilla/websocket"

	"github.com/threadbox/threadbox/internal/sessionlog"
	"github.com/threadbox/threadbox/internal/shell"
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
// with Stoppable runs instead under timeout(1) in a session and process
// group of its own (setsid), whose id it writes to
// /tmp/threadbox-sessions/SESSION.pgid inside the sandbox; SignalSessionCommand
// and StopSessionCommand then run `kill` in the sandbox (through Exec) on
// that group. timeout(1) leads the group so that the command's Timeout holds
// in the sandbox itself, whatever happens to the caller. Signals other than
// KILL go to every process of the group but timeout(1) and threadbox's own
// wrapper (which ignore or defer them): timeout(1) would otherwise pass them
// on a second time and turn any of them into a KILL after SessionKillAfter.
// Everything the command started goes with a stop unless it moved itself to
// another process group (setsid, a daemonizing server); the file is removed
// when the command ends, so a later stop cannot hit a recycled id. It needs
// util-linux's setsid (with -w) and coreutils' timeout, stdbuf and head in
// the
// image, as Daytona's default has.

// sessionIDRe keeps session ids usable in a URL path and as a file name.
var sessionIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// envNameRe is what a shell accepts as a variable name (an env name is
// spelled into the command).
var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pgidDir is where stoppable commands record their process group.
const pgidDir = "/tmp/threadbox-sessions"

// SessionExecRequest is one command run in a session.
type SessionExecRequest struct {
	Command string
	// Async returns as soon as Daytona accepted the command, with its id only;
	// follow it with GetSessionCommand and the logs.
	Async bool
	// Stoppable runs the command in a process group of its own that
	// SignalSessionCommand and StopSessionCommand can reach. At most one
	// stoppable command per session runs at a time (a session runs its
	// commands in turn).
	Stoppable bool
	// Timeout (Stoppable only; zero: none) ends the command in the sandbox
	// itself: its process group gets SIGTERM at the timeout and SIGKILL
	// SessionKillAfter later. It then exits 124 (137 when it had to be
	// killed), and the bound holds even if the caller goes away.
	Timeout time.Duration
	// MaxOutput (Stoppable only; zero: no limit) merges stdout and stderr and
	// lets at most this many bytes reach Daytona's log; the rest is read and
	// dropped in the sandbox while the command runs on (it never sees a
	// broken pipe). Daytona keeps a command's log on the sandbox's disk,
	// unbounded, until the session is deleted: this is what bounds it. A
	// caller that must tell a cut output passes one byte more than it keeps.
	MaxOutput int64
	// Cwd and Env (Stoppable only) are the command's working directory
	// (default: the session's) and extra environment, as Exec has them.
	Cwd string
	Env map[string]string
}

// SessionKillAfter is the time a Stoppable command that reached its Timeout
// gets between SIGTERM and SIGKILL.
const SessionKillAfter = 5 * time.Second

// Signal is a signal SignalSessionCommand can send.
type Signal string

// The signals a session command can be sent.
const (
	SIGHUP  Signal = "HUP"
	SIGINT  Signal = "INT"
	SIGQUIT Signal = "QUIT"
	SIGTERM Signal = "TERM"
	SIGKILL Signal = "KILL"
	SIGUSR1 Signal = "USR1"
	SIGUSR2 Signal = "USR2"
)

// Valid reports whether s is one of the signals above.
func (s Signal) Valid() bool {
	switch s {
	case SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGKILL, SIGUSR1, SIGUSR2:
		return true
	}
	return false
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
	if !r.Stoppable && (r.Timeout != 0 || r.MaxOutput != 0 || r.Cwd != "" || len(r.Env) > 0) {
		return SessionExecResult{}, &Error{Kind: ErrBadRequest, Op: op, Message: "a timeout, an output limit, a cwd and env need a stoppable command"}
	}
	for k := range r.Env {
		if !envNameRe.MatchString(k) {
			return SessionExecResult{}, &Error{Kind: ErrBadRequest, Op: op, Message: fmt.Sprintf("invalid environment variable name %q", k)}
		}
	}
	if r.Timeout < 0 || r.MaxOutput < 0 {
		return SessionExecResult{}, &Error{Kind: ErrBadRequest, Op: op, Message: "negative timeout or output limit"}
	}
	cmd := r.Command
	if r.Stoppable {
		cmd = stoppable(sessionID, r)
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

// stoppable wraps a command so that it runs under timeout(1), in its own
// process group (and session), records the group id for SignalSessionCommand
// while it runs, and, with an output limit, passes at most that much output
// on (head, unbuffered by stdbuf: it would otherwise hold output back in
// stdio's buffer; dd cannot count bytes over a pipe's short reads). The
// group's leader is timeout(1); the wrapper bash under it defers the signals
// the command may be sent (trap :) and the output limiter ignores them, so a
// signal reaches the command alone. The wrapper's own messages (bash's
// "Terminated" for a command a signal ended) are not the command's output
// and are dropped.
func stoppable(sessionID string, r SessionExecRequest) string {
	pgidFile := pgidDir + "/" + sessionID + ".pgid"
	inner := `echo $PPID > "$1" || exit 125
[ -n "$3" ] || exec /bin/bash -c "$2"
exec 2>/dev/null
trap : HUP INT QUIT TERM USR1 USR2
set -o pipefail
/bin/bash -c "$2" 2>&1 | { trap "" HUP INT QUIT TERM USR1 USR2; stdbuf -o0 head -c "$3"; cat >/dev/null; }`
	outer := `setsid -w timeout -k "$3" "$2" /bin/bash -c "$4" threadbox-command "$1" "$5" "$6"; rc=$?; rm -f "$1"; exit $rc`
	limit := ""
	if r.MaxOutput > 0 {
		limit = strconv.FormatInt(r.MaxOutput, 10)
	}
	return "mkdir -p " + pgidDir + " && /bin/sh -c " + shell.Quote(outer) + " threadbox-session " +
		shell.Quote(pgidFile) + " " + seconds(r.Timeout) + " " + seconds(SessionKillAfter) + " " +
		shell.Quote(inner) + " " + shell.Quote(withEnv(r)) + " " + shell.Quote(limit)
}

// withEnv prefixes a command with its environment and working directory.
// A cwd that does not exist fails the command (exit 1, bash's message).
func withEnv(r SessionExecRequest) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(r.Env)) {
		b.WriteString("export " + k + "=" + shell.Quote(r.Env[k]) + "\n")
	}
	if r.Cwd != "" {
		b.WriteString("cd -- " + shell.Quote(r.Cwd) + " || exit 1\n")
	}
	return b.String() + r.Command
}

// seconds renders a duration for timeout(1) ("0s" disables it).
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// groupScript is the start of every script that acts on a stoppable
// command's process group: it finds the group in the session's file and
// answers "none" when no command is running. An empty file is left alone:
// the wrapper's redirection creates it an instant before its echo writes the
// group, and removing it then would unlink the file the echo is about to
// write, so the command could never be signalled or stopped.
func groupScript(sessionID string) string {
	return `f=` + shell.Quote(pgidDir+"/"+sessionID+".pgid") + `
pg=$(cat "$f" 2>/dev/null) || { echo none; exit 0; }
case "$pg" in '') echo none; exit 0 ;; *[!0-9]*) rm -f "$f"; echo none; exit 0 ;; esac
[ "$pg" -gt 1 ] && kill -0 -- "-$pg" 2>/dev/null || { rm -f "$f"; echo none; exit 0; }
`
}

// signalMembers sends a signal to every process of the group but its
// leader (timeout(1)); the fifth field of /proc/PID/stat is the group.
func signalMembers(sig Signal) string {
	return `for s in /proc/[0-9]*/stat; do
{ read -r line < "$s"; } 2>/dev/null || continue
set -- ${line##*") "}
[ "$3" = "$pg" ] || continue
p=${s#/proc/}; p=${p%/stat}
[ "$p" = "$pg" ] || kill -` + string(sig) + ` "$p" 2>/dev/null
done
`
}

// groupCall runs a group script in the sandbox and reads its answer:
// true for done, false for "none".
func (t *Toolbox) groupCall(ctx context.Context, op, script string, timeout time.Duration, done string) (bool, error) {
	res, err := t.Exec(ctx, ExecRequest{Command: script, Timeout: timeout})
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(res.Output) {
	case done:
		return true, nil
	case "none":
		return false, nil
	}
	return false, &Error{Kind: ErrUnavailable, Op: op, Message: "unexpected answer from the sandbox: " + res.Output}
}

// SignalSessionCommand sends sig to the Stoppable command running in a
// session: KILL to its whole process group (it ends at once), any other
// signal to each of its processes, as a terminal's Ctrl-C would. It reports
// whether a command was running.
func (t *Toolbox) SignalSessionCommand(ctx context.Context, sessionID string, sig Signal) (bool, error) {
	const op = "signal session command"
	if err := checkSessionID(op, sessionID); err != nil {
		return false, err
	}
	if !sig.Valid() {
		return false, &Error{Kind: ErrBadRequest, Op: op, Message: fmt.Sprintf("unknown signal %q", sig)}
	}
	script := groupScript(sessionID)
	if sig == SIGKILL {
		script += `kill -KILL -- "-$pg" 2>/dev/null
`
	} else {
		script += signalMembers(sig)
	}
	return t.groupCall(ctx, op, script+"echo sent", 30*time.Second, "sent")
}

// StopSessionCommand ends the Stoppable command running in a session: its
// processes get SIGTERM, and its process group SIGKILL if anything of it is
// still there after grace. It reports whether a command was running;
// stopping one that already ended is not an error.
func (t *Toolbox) StopSessionCommand(ctx context.Context, sessionID string, grace time.Duration) (bool, error) {
	const op = "stop session command"
	if err := checkSessionID(op, sessionID); err != nil {
		return false, err
	}
	script := groupScript(sessionID) + signalMembers(SIGTERM) + fmt.Sprintf(`i=0
while [ "$i" -lt %d ] && kill -0 -- "-$pg" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
kill -KILL -- "-$pg" 2>/dev/null
rm -f "$f"
echo stopped`, int(grace/(100*time.Millisecond)))
	return t.groupCall(ctx, op, script, grace+30*time.Second, "stopped")
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
