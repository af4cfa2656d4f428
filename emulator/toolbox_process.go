package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/threadbox/threadbox/internal/shell"
)

// daemonError writes common-go's ErrorResponse as the daemon's error
// middleware does: the message starts with the status in words
// ("bad request: ...", "request timeout: ...").
func daemonError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	writeToolboxError(w, r, status, strings.ToLower(http.StatusText(status))+": "+msg)
}

// runtimeError answers a failure to get the sandbox's runtime.
func (s *Server) runtimeError(w http.ResponseWriter, r *http.Request, t *tbSandbox, err error) {
	if errors.Is(err, errNotRunning) {
		writeToolboxError(w, r, http.StatusBadRequest, "bad request: failed to get runner info: no IP address found. Is the Sandbox started?")
		return
	}
	s.log.Error("sandbox runtime", "sandbox", t.id, "err", err)
	daemonError(w, r, http.StatusInternalServerError, "sandbox runtime unavailable")
}

type executeResponse struct {
	ExitCode int    `json:"exitCode"`
	Result   string `json:"result"`
}

// handleExecute runs the command as a bash script (piped on stdin) with
// combined output, as the daemon does. Like the daemon, the command belongs
// to the sandbox, not to the request: background jobs keep running after the
// answer, a client that hangs up does not stop it, and the answer waits
// until every process holding the command's output has closed it. Only the
// timeout (408) kills it, with its whole process group.
func (s *Server) handleExecute(w http.ResponseWriter, r *http.Request, t *tbSandbox) {
	var req struct {
		Command string            `json:"command"`
		Cwd     *string           `json:"cwd"`
		Envs    map[string]string `json:"envs"`
		Timeout *int              `json:"timeout"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		daemonError(w, r, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Command) == "" {
		daemonError(w, r, http.StatusBadRequest, "command cannot be empty or whitespace-only")
		return
	}
	re := envNameRe
	for k := range req.Envs {
		if !re.MatchString(k) {
			daemonError(w, r, http.StatusBadRequest, fmt.Sprintf("invalid environment variable name: '%s'", k))
			return
		}
	}
	cwd := homeDir
	if req.Cwd != nil && *req.Cwd != "" {
		cwd = *req.Cwd
	}
	res, err := t.resolve(cwd, true)
	if err == nil {
		fi, serr := res.stat()
		if err = serr; err == nil && !fi.IsDir() {
			err = syscall.ENOTDIR
		}
	}
	if err != nil {
		// What Go's exec reports when the daemon's chdir fails in the child.
		writeJSON(w, http.StatusOK, executeResponse{ExitCode: -1, Result: "fork/exec /usr/bin/bash: " + unwrapPathErr(err).Error()})
		return
	}
	rt, err := s.runtimeFor(t)
	if err != nil {
		s.runtimeError(w, r, t, err)
		return
	}
	env := sandboxEnv(rt, t.id, t.env, req.Envs)
	dir := rt.sandboxPath(res.sandbox)
	j, err := rt.newJob(map[string][]byte{"cmd": []byte(req.Command)}, func(view string) string {
		return execLauncher(view, dir, env)
	})
	if err != nil {
		s.runtimeError(w, r, t, err)
		return
	}
	var timeout time.Duration
	if req.Timeout != nil && *req.Timeout > 0 {
		timeout = time.Duration(*req.Timeout) * time.Second
	}
	switch err := j.wait(timeout); {
	case errors.Is(err, errJobTimeout):
		if kerr := j.kill(); kerr != nil {
			s.log.Warn("kill timed-out command", "sandbox", t.id, "err", kerr)
		}
		daemonError(w, r, http.StatusRequestTimeout, "command execution timeout")
		return
	case err != nil:
		// The sandbox stopped under the command: it was killed.
		j.release()
		writeJSON(w, http.StatusOK, executeResponse{ExitCode: -1, Result: ""})
		return
	}
	out, _ := j.readFile("out")
	code := -1
	if b, err := j.readFile("code"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			code = n
		}
	}
	j.release()
	writeJSON(w, http.StatusOK, executeResponse{ExitCode: code, Result: string(out)})
}

// execLauncher is the script the spawner runs for one execute: the command
// file goes to bash on stdin, stdout and stderr go through one pipe to the
// output file, and "done" is written once the pipe is closed by every
// process holding it (a background job that keeps stdout keeps the call).
func execLauncher(view, cwd string, env map[string]string) string {
	return "J=" + shell.Quote(view) + "\n" +
		"echo $$ > \"$J/pid\"\n" +
		exportLines(env) +
		"cd -- " + shell.Quote(cwd) + " || { echo > \"$J/done\"; exit 1; }\n" +
		"{ /bin/bash -s < \"$J/cmd\"; echo $? > \"$J/code\"; } 2>&1 | cat > \"$J/out\"\n" +
		"echo > \"$J/done\"\n"
}

// unwrapPathErr reduces an error to its errno, dropping the host paths
// os.PathError and os.LinkError carry.
func unwrapPathErr(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// warnNoIsolation logs, once per server, that commands are not confined.
func (s *Server) warnNoIsolation() {
	s.hostWarnOnce.Do(func() {
		s.log.Warn("EMULATOR_UNSAFE_HOST_EXEC: sandbox commands run on this host WITHOUT isolation, as the user " +
			"running the emulator; they can read and write anything it can and reach every local service")
	})
}
