package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/threadbox/threadbox/internal/sessionlog"
	"github.com/threadbox/threadbox/internal/shell"
)

// Sessions follow the daemon (apps/daemon/pkg/session): a session is one
// long-lived bash that reads command wrappers on its stdin, so `cd` and
// `export` carry over and the commands of one session run one after the
// other (an async command occupies its session until it ends). Each command
// has a directory ~/.daytona/sessions/SESSION/COMMAND in the sandbox with
// the command (cmd.sh), its output (output.log, every line prefixed with
// 0x01 0x01 0x01 for stdout or 0x02 0x02 0x02 for stderr) and, once it
// ended and its output was drained, exit_code. Deleting the session kills
// its shell's process group, and so the command running in it. The v0.190.0
// daemon has no route to signal one command.

// sessionsDir is where the daemon keeps session logs (its ~/.daytona).
const sessionsDir = homeDir + "/.daytona/sessions"

// session is one Daytona session of a sandbox runtime.
type session struct {
	id    string
	shell *job // the session's bash; its stdin is the FIFO "in" of its job directory

	mu    sync.Mutex // serialises writes to the shell's stdin
	stdin *os.File
	cmds  []*sessionCommand
}

type sessionCommand struct {
	ID      string
	Command string
}

type commandDTO struct {
	ID       string `json:"id"`
	Command  string `json:"command"`
	ExitCode *int   `json:"exitCode,omitempty"`
}

type sessionDTO struct {
	SessionID string       `json:"sessionId"`
	Commands  []commandDTO `json:"commands"`
}

// validSessionID keeps ids usable as one path component.
func validSessionID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\x00")
}

// lookupSession finds a session of a running sandbox; found is false when
// the handler answered.
func (s *Server) lookupSession(w http.ResponseWriter, r *http.Request, t *tbSandbox) (*sandboxRuntime, *session, bool) {
	rt, err := s.runtimeFor(t)
	if err != nil {
		s.runtimeError(w, r, t, err)
		return nil, nil, false
	}
	rt.mu.Lock()
	se := rt.sessions[r.PathValue("sessionId")]
	rt.mu.Unlock()
	if se == nil {
		daemonError(w, r, http.StatusNotFound, "session not found")
		return nil, nil, false
	}
	return rt, se, true
}

func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	var req struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		daemonError(w, r, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	if !validSessionID(req.SessionID) {
		daemonError(w, r, http.StatusBadRequest, "invalid session id")
		return
	}
	rt, err := s.runtimeFor(t)
	if err != nil {
		s.runtimeError(w, r, t, err)
		return
	}
	rt.mu.Lock()
	if rt.sessions[req.SessionID] != nil {
		rt.mu.Unlock()
		daemonError(w, r, http.StatusConflict, "session already exists")
		return
	}
	se := &session{id: req.SessionID}
	rt.sessions[req.SessionID] = se // reserved while the shell starts
	rt.mu.Unlock()
	if err := s.startSessionShell(rt, t, se); err != nil {
		rt.mu.Lock()
		delete(rt.sessions, req.SessionID)
		rt.mu.Unlock()
		s.log.Error("start session shell", "sandbox", t.id, "session", se.id, "err", err)
		daemonError(w, r, http.StatusInternalServerError, "failed to start session")
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// startSessionShell creates the session's log directory and starts its bash,
// waiting until it reads its stdin.
func (s *Server) startSessionShell(rt *sandboxRuntime, t *tbSandbox, se *session) error {
	dir, err := t.resolve(path.Join(sessionsDir, se.id), true)
	if err != nil {
		return err
	}
	_ = dir.fs.RemoveAll(dir.rel)
	if err := dir.fs.MkdirAll(dir.rel, 0o755); err != nil {
		return err
	}
	env := sandboxEnv(rt, t.id, t.env)
	home := rt.sandboxPath(homeDir)
	j, err := rt.newJob(nil, func(view string) string {
		return "J=" + shell.Quote(view) + "\n" +
			"echo $$ > \"$J/pid\"\n" +
			exportLines(env) +
			"cd -- " + shell.Quote(home) + " || cd /\n" +
			"exec /bin/bash 0<>\"$J/in\" >/dev/null 2>&1\n"
	}, "in")
	if err != nil {
		return err
	}
	se.shell = j
	deadline := time.Now().Add(runtimeStartTimeout)
	for {
		f, err := rt.dir.OpenFile(j.rel+"/in", os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			se.stdin = f
			return nil
		}
		if !errors.Is(err, syscall.ENXIO) || time.Now().After(deadline) || !rt.alive() {
			_ = j.kill()
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	rt, err := s.runtimeFor(t)
	if err != nil {
		s.runtimeError(w, r, t, err)
		return
	}
	rt.mu.Lock()
	list := make([]*session, 0, len(rt.sessions))
	for _, se := range rt.sessions {
		if se.stdin != nil {
			list = append(list, se)
		}
	}
	rt.mu.Unlock()
	out := make([]sessionDTO, 0, len(list))
	for _, se := range list {
		out = append(out, s.sessionDTO(t, se))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	_, se, ok := s.lookupSession(w, r, t)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.sessionDTO(t, se))
}

func (s *Server) sessionDTO(t *tbSandbox, se *session) sessionDTO {
	se.mu.Lock()
	cmds := append([]*sessionCommand(nil), se.cmds...)
	se.mu.Unlock()
	out := sessionDTO{SessionID: se.id, Commands: make([]commandDTO, 0, len(cmds))}
	for _, c := range cmds {
		out.Commands = append(out.Commands, commandDTO{ID: c.ID, Command: c.Command, ExitCode: commandExit(t, se, c)})
	}
	return out
}

// commandDir resolves a command's directory in the sandbox.
func commandDir(t *tbSandbox, se *session, cmdID string) (resolved, error) {
	return t.resolve(path.Join(sessionsDir, se.id, cmdID), true)
}

// commandExit reads a command's exit code once it has ended.
func commandExit(t *tbSandbox, se *session, c *sessionCommand) *int {
	dir, err := commandDir(t, se, c.ID)
	if err != nil {
		return nil
	}
	b, err := dir.fs.ReadFile(dir.rel + "/exit_code")
	if err != nil {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	return &n
}

func (s *Server) handleDeleteSession(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	rt, se, ok := s.lookupSession(w, r, t)
	if !ok {
		return
	}
	rt.mu.Lock()
	delete(rt.sessions, se.id)
	rt.mu.Unlock()
	se.close()
	if dir, err := t.resolve(path.Join(sessionsDir, se.id), true); err == nil {
		_ = dir.fs.RemoveAll(dir.rel)
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleted reports whether the session was deleted (closed).
func (se *session) deleted() bool {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.stdin == nil
}

// close kills the session's shell with its process group (the command
// running in it, its labelers and every background job it did not move to
// another session).
func (se *session) close() {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.stdin != nil {
		_ = se.stdin.Close()
		se.stdin = nil
	}
	if se.shell != nil {
		_ = se.shell.kill()
	}
}

type sessionExecuteResponse struct {
	CmdID    string  `json:"cmdId"`
	Output   *string `json:"output,omitempty"`
	Stdout   *string `json:"stdout,omitempty"`
	Stderr   *string `json:"stderr,omitempty"`
	ExitCode *int    `json:"exitCode,omitempty"`
}

func (s *Server) handleSessionExecute(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	var req struct {
		Command  string `json:"command"`
		RunAsync bool   `json:"runAsync"`
		Async    bool   `json:"async"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		daemonError(w, r, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	async := req.RunAsync || req.Async
	if strings.TrimSpace(req.Command) == "" {
		daemonError(w, r, http.StatusBadRequest, "command cannot be empty")
		return
	}
	rt, se, ok := s.lookupSession(w, r, t)
	if !ok {
		return
	}
	c := &sessionCommand{ID: uuid.NewString(), Command: req.Command}
	dir, err := commandDir(t, se, c.ID)
	if err == nil {
		err = dir.fs.MkdirAll(dir.rel, 0o755)
	}
	if err == nil {
		err = dir.fs.WriteFile(dir.rel+"/cmd.sh", []byte(req.Command), 0o600)
	}
	if err == nil {
		err = dir.fs.WriteFile(dir.rel+"/output.log", nil, 0o644)
	}
	if err != nil {
		daemonError(w, r, http.StatusBadRequest, "failed to create log file: "+unwrapPathErr(err).Error())
		return
	}
	wrapper := sessionWrapper(rt.sandboxPath(path.Join(sessionsDir, se.id, c.ID)), async)
	se.mu.Lock()
	if se.stdin == nil {
		se.mu.Unlock()
		daemonError(w, r, http.StatusNotFound, "session not found")
		return
	}
	se.cmds = append(se.cmds, c)
	_, err = se.stdin.Write([]byte(wrapper))
	se.mu.Unlock()
	if err != nil {
		daemonError(w, r, http.StatusBadRequest, "failed to write command: "+unwrapPathErr(err).Error())
		return
	}
	if async {
		writeJSON(w, http.StatusAccepted, sessionExecuteResponse{CmdID: c.ID})
		return
	}
	// Like the daemon: poll for the exit code (the command's end, its
	// output drained), then answer with the log.
	for {
		if code := commandExit(t, se, c); code != nil {
			logBytes, _ := dir.fs.ReadFile(dir.rel + "/output.log")
			writeJSON(w, http.StatusOK, executeResult(r.Header, c.ID, logBytes, code))
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-rt.exited:
			daemonError(w, r, http.StatusBadRequest, "session cancelled")
			return
		case <-time.After(20 * time.Millisecond):
		}
		se.mu.Lock()
		gone := se.stdin == nil
		se.mu.Unlock()
		if gone {
			daemonError(w, r, http.StatusBadRequest, "session cancelled")
			return
		}
	}
}

// executeResult renders a finished session command for the client's SDK
// version: the output without markers for old clients, else the raw log
// and stdout and stderr apart. (The daemon sends the fields it leaves
// empty as null, which its own document does not allow; they are omitted.)
func executeResult(h http.Header, id string, logBytes []byte, code *int) sessionExecuteResponse {
	if !splitOutput(h) {
		out := string(sessionlog.Strip(logBytes))
		return sessionExecuteResponse{CmdID: id, Output: &out, ExitCode: code}
	}
	raw := string(logBytes)
	stdout, stderr := sessionlog.Demux(logBytes)
	so, se := string(stdout), string(stderr)
	return sessionExecuteResponse{CmdID: id, Output: &raw, Stdout: &so, Stderr: &se, ExitCode: code}
}

// sessionWrapper is what the session's shell runs for one command: the
// command file is sourced in the shell itself (so cd and export persist),
// its stdout and stderr go through FIFOs to labelers that prefix every line
// and append it to output.log, its stdin is a FIFO kept open for async
// commands (send input) and closed at once otherwise, and exit_code is
// written after the labelers drained every holder of the output.
func sessionWrapper(dir string, async bool) string {
	holder := `: > "$__tb_d/input.pipe" &`
	if async {
		holder = `sleep infinity > "$__tb_d/input.pipe" &`
	}
	label := func(fifo, marker string) string {
		return `( while IFS= read -r __tb_l || [ -n "$__tb_l" ]; do printf '` + marker + `%s\n' "$__tb_l"; done < "$__tb_d/` +
			fifo + `" ) >> "$__tb_d/output.log" &`
	}
	return "{\n" +
		"__tb_d=" + shell.Quote(dir) + "\n" +
		`rm -f "$__tb_d/stdout.pipe" "$__tb_d/stderr.pipe" "$__tb_d/input.pipe"` + "\n" +
		`mkfifo "$__tb_d/stdout.pipe" "$__tb_d/stderr.pipe" "$__tb_d/input.pipe"` + "\n" +
		label("stdout.pipe", `\001\001\001`) + " __tb_o=$!\n" +
		label("stderr.pipe", `\002\002\002`) + " __tb_e=$!\n" +
		holder + " __tb_h=$!\n" +
		`{ . "$__tb_d/cmd.sh"; } < "$__tb_d/input.pipe" > "$__tb_d/stdout.pipe" 2> "$__tb_d/stderr.pipe"` + "\n" +
		"__tb_c=$?\n" +
		`kill "$__tb_h" 2>/dev/null; wait "$__tb_h" 2>/dev/null` + "\n" +
		`wait "$__tb_o" "$__tb_e"` + "\n" +
		`echo "$__tb_c" >> "$__tb_d/exit_code"` + "\n" +
		`rm -f "$__tb_d/stdout.pipe" "$__tb_d/stderr.pipe" "$__tb_d/input.pipe"` + "\n" +
		"}\n"
}

// commandRef is a command of a session found for a request.
type commandRef struct {
	rt  *sandboxRuntime
	se  *session
	c   *sessionCommand
	dir resolved // its directory under ~/.daytona/sessions
}

// lookupCommand finds the request's session and command; ok is false when
// the handler answered.
func (s *Server) lookupCommand(w http.ResponseWriter, r *http.Request, t *tbSandbox) (commandRef, bool) {
	rt, se, ok := s.lookupSession(w, r, t)
	if !ok {
		return commandRef{}, false
	}
	id := r.PathValue("commandId")
	se.mu.Lock()
	var c *sessionCommand
	for _, sc := range se.cmds {
		if sc.ID == id {
			c = sc
		}
	}
	se.mu.Unlock()
	if c == nil {
		daemonError(w, r, http.StatusNotFound, "command not found")
		return commandRef{}, false
	}
	dir, err := commandDir(t, se, c.ID)
	if err != nil {
		daemonError(w, r, http.StatusNotFound, "command directory not found")
		return commandRef{}, false
	}
	return commandRef{rt: rt, se: se, c: c, dir: dir}, true
}

func (s *Server) handleGetSessionCommand(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	ref, ok := s.lookupCommand(w, r, t)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, commandDTO{ID: ref.c.ID, Command: ref.c.Command, ExitCode: commandExit(t, ref.se, ref.c)})
}

func (s *Server) handleSessionInput(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	var req struct {
		Data string `json:"data"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		daemonError(w, r, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	ref, ok := s.lookupCommand(w, r, t)
	if !ok {
		return
	}
	// The command may not have reached its stdin yet (the session runs its
	// commands in turn): wait for its reader while it has not ended.
	var f *os.File
	for deadline := time.Now().Add(5 * time.Second); ; {
		var err error
		f, err = ref.dir.fs.OpenFile(ref.dir.rel+"/input.pipe", os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			break
		}
		retry := errors.Is(err, syscall.ENXIO) || errors.Is(err, os.ErrNotExist)
		if !retry || commandExit(t, ref.se, ref.c) != nil || time.Now().After(deadline) {
			daemonError(w, r, http.StatusBadRequest, "command is not running")
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer f.Close()
	if _, err := f.Write([]byte(req.Data)); err != nil {
		daemonError(w, r, http.StatusBadRequest, "failed to write input: "+unwrapPathErr(err).Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type logsDTO struct {
	Output string `json:"output"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

// handleSessionCommandLogs answers the log so far: JSON with stdout and
// stderr apart for SDKs >= 0.167.0, plain text otherwise (markers kept for
// clients that split output). With a WebSocket upgrade it streams the log
// as binary messages, and with follow=true it keeps streaming until the
// command ended, then closes normally.
func (s *Server) handleSessionCommandLogs(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	ref, ok := s.lookupCommand(w, r, t)
	if !ok {
		return
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.streamLogs(w, r, t, ref)
		return
	}
	logBytes, err := ref.dir.fs.ReadFile(ref.dir.rel + "/output.log")
	if err != nil {
		daemonError(w, r, pathErrStatus(err), "failed to read log file")
		return
	}
	if logsAsJSON(r.Header) {
		stdout, stderr := sessionlog.Demux(logBytes)
		writeJSON(w, http.StatusOK, logsDTO{Output: string(logBytes), Stdout: string(stdout), Stderr: string(stderr)})
		return
	}
	if !splitOutput(r.Header) {
		logBytes = sessionlog.Strip(logBytes)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(logBytes)
}

var logUpgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// streamLogs sends the log over a WebSocket as it grows.
func (s *Server) streamLogs(w http.ResponseWriter, r *http.Request, t *tbSandbox, ref commandRef) {
	f, err := ref.dir.fs.Open(ref.dir.rel + "/output.log")
	if err != nil {
		daemonError(w, r, pathErrStatus(err), "failed to open log file")
		return
	}
	defer f.Close()
	ws, err := logUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	defer ws.Close()
	follow := r.URL.Query().Get("follow") == "true"
	split := splitOutput(r.Header)
	// The client only closes; reading notices that.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				cancel()
				return
			}
		}
	}()
	var strip sessionlog.Stripper // a marker may be split across reads
	buf := make([]byte, 32<<10)
	for {
		// Checked before reading: no line written after it is lost. A
		// deleted session ends the stream too, as the daemon's does (its
		// session context is cancelled).
		ended := (commandExit(t, ref.se, ref.c) != nil && !s.faults.cfg.FollowUntilDeleted) || ref.se.deleted()
		for {
			n, err := f.Read(buf)
			if n > 0 {
				chunk := buf[:n]
				if !split {
					chunk = strip.Next(chunk)
				}
				if len(chunk) > 0 {
					if werr := ws.WriteMessage(websocket.BinaryMessage, chunk); werr != nil {
						return
					}
				}
			}
			if err != nil {
				break
			}
		}
		if !follow || ended {
			if rest := strip.Flush(); len(rest) > 0 {
				_ = ws.WriteMessage(websocket.BinaryMessage, rest)
			}
			_ = ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ref.rt.exited:
			_ = ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sdkVersion is the client's SDK version (header, or the WebSocket
// subprotocol "X-Daytona-SDK-Version~V").
func sdkVersion(h http.Header) string {
	if v := h.Get("X-Daytona-SDK-Version"); v != "" {
		return v
	}
	for _, p := range strings.Split(h.Get("Sec-WebSocket-Protocol"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "X-Daytona-SDK-Version~"); ok {
			return v
		}
	}
	return ""
}

// splitOutput is the daemon's !IsCombinedOutput: stdout and stderr are kept
// apart for SDKs >= 0.27.0 (and dev builds), and for clients without a
// version that send X-Daytona-Split-Output: true.
func splitOutput(h http.Header) bool {
	v := sdkVersion(h)
	if v == "" {
		return h.Get("X-Daytona-Split-Output") == "true"
	}
	return strings.Contains(v, "dev") || !versionBelow(v, 0, 27)
}

// logsAsJSON: logs come as JSON for SDKs >= 0.167.0 (per the v0.190.0 document).
func logsAsJSON(h http.Header) bool {
	v := sdkVersion(h)
	return v != "" && (strings.Contains(v, "dev") || !versionBelow(v, 0, 167))
}

// versionBelow reports whether a version "X.Y[.Z...]" is below major.minor;
// an unparsable one counts as new (like the daemon).
func versionBelow(v string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.SplitN(parts[1], "-", 2)[0])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma < major || (ma == major && mi < minor)
}
