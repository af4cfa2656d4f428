package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// lockedBuffer collects combined stdout+stderr written from two pipes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func envNameRe() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) }

// registerProc records a running command's cancel func so stop/delete/Close
// can kill it; the returned func unregisters it.
func (s *Server) registerProc(sandboxID string, cancel context.CancelFunc) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procSeq++
	n := s.procSeq
	if s.procs[sandboxID] == nil {
		s.procs[sandboxID] = map[uint64]context.CancelFunc{}
	}
	s.procs[sandboxID][n] = cancel
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.procs[sandboxID], n)
		if len(s.procs[sandboxID]) == 0 {
			delete(s.procs, sandboxID)
		}
	}
}

// killProcs kills every command running in a sandbox (stop and delete do this).
func (s *Server) killProcs(sandboxID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.procs[sandboxID] {
		c()
	}
}

type executeResponse struct {
	ExitCode int    `json:"exitCode"`
	Result   string `json:"result"`
}

// handleExecute runs the command piped on stdin to a shell, with combined
// output, an optional timeout in seconds (408 and the process group killed)
// and exitCode -1 when the process cannot start.
func (s *Server) handleExecute(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	var req struct {
		Command string            `json:"command"`
		Cwd     *string           `json:"cwd"`
		Envs    map[string]string `json:"envs"`
		Timeout *int              `json:"timeout"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		writeToolboxError(w, r, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Command) == "" {
		writeToolboxError(w, r, http.StatusBadRequest, "command is required")
		return
	}
	re := envNameRe()
	for k := range req.Envs {
		if !re.MatchString(k) {
			writeToolboxError(w, r, http.StatusBadRequest, fmt.Sprintf("invalid environment variable name: '%s'", k))
			return
		}
	}
	cwd := homeDir
	if req.Cwd != nil && *req.Cwd != "" {
		cwd = *req.Cwd
	}
	res, err := t.resolve(cwd, true)
	if err == nil {
		var fi os.FileInfo
		if fi, err = os.Stat(res.host); err == nil && !fi.IsDir() {
			err = syscall.ENOTDIR
		}
	}
	if err != nil {
		writeJSON(w, http.StatusOK, executeResponse{ExitCode: -1, Result: fmt.Sprintf("chdir %s: %v", cwd, unwrapPathErr(err))})
		return
	}

	ctx := r.Context()
	var timeoutCtx context.Context
	if req.Timeout != nil && *req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*req.Timeout)*time.Second)
		defer cancel()
		timeoutCtx = ctx
	}
	ctx, kill := context.WithCancel(ctx)
	defer kill()
	defer s.registerProc(t.id, kill)()

	out := &lockedBuffer{}
	cmd := s.buildCommand(ctx, t, res, req.Command, req.Envs)
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	if timeoutCtx != nil && errors.Is(timeoutCtx.Err(), context.DeadlineExceeded) {
		writeToolboxError(w, r, http.StatusRequestTimeout, "request timeout: command execution timeout")
		return
	}
	exit := 0
	if runErr != nil {
		var ee *exec.ExitError
		switch {
		case errors.As(runErr, &ee):
			exit = ee.ExitCode()
		case cmd.ProcessState != nil:
			exit = cmd.ProcessState.ExitCode()
		default:
			writeJSON(w, http.StatusOK, executeResponse{ExitCode: -1, Result: runErr.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, executeResponse{ExitCode: exit, Result: out.String()})
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// warnNoIsolation logs, once per server, that commands are not confined.
func (s *Server) warnNoIsolation() {
	s.hostWarnOnce.Do(func() {
		s.log.Warn("bubblewrap unavailable or disabled: toolbox commands run on the host WITHOUT isolation; "+
			"they can read and write anything the emulator process can", "isolation", string(s.opts.Isolation))
	})
}

// buildCommand prepares the shell: inside bubblewrap when available, else on
// the host with the working directory mapped into the sandbox.
func (s *Server) buildCommand(ctx context.Context, t *tbSandbox, cwd resolved, command string, envs map[string]string) *exec.Cmd {
	shell := pickShell()
	home := homeDir
	var cmd *exec.Cmd
	if s.bwrapPath != "" {
		cmd = exec.CommandContext(ctx, s.bwrapPath, bwrapArgs(t, cwd.sandbox, shell)...)
	} else {
		s.warnNoIsolation()
		home = hostHome(t)
		cmd = exec.CommandContext(ctx, shell, "-s")
		cmd.Dir = cwd.host
	}
	env := map[string]string{
		"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME": home,
		"USER": "daytona",
		"LANG": "C.UTF-8",
	}
	for k, v := range t.env {
		env[k] = v
	}
	for k, v := range envs {
		env[k] = v
	}
	if s.bwrapPath != "" {
		env["HOME"] = homeDir
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdin = strings.NewReader(command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// Background children holding the output pipe must not hang the request.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}
