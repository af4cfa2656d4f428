package threads

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/clientpath"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/sandbox"
)

// defaultExecTimeout applies when timeout_s is omitted (capped by
// Config.MaxExecTimeout).
const defaultExecTimeout = 300 * time.Second

// execGrace is added to a command's timeout for what the sandbox must
// survive: Daytona's answer after the timeout, our response.
const execGrace = 2 * time.Second

// timedOutExitCode is what a command cut by its timeout reports, as
// timeout(1) does, so agents handle it like any failed command.
const timedOutExitCode = 124

const maxEnvVars = 256

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

type execRequest struct {
	Command  *string           `json:"command"`
	Cwd      *string           `json:"cwd"`
	Env      map[string]string `json:"env"`
	TimeoutS *int64            `json:"timeout_s"`
}

// execResponse is the command's result. TimedOut (an addition to the
// contract) is true when the timeout cut the command: exit_code is then 124
// and the output is empty because Daytona drops it.
type execResponse struct {
	ExitCode  int    `json:"exit_code"`
	Output    string `json:"output"`
	Truncated bool   `json:"truncated"`
	TimedOut  bool   `json:"timed_out"`
}

// validate checks the request and returns Daytona's ExecRequest.
func (r execRequest) validate(maxTimeout time.Duration) (daytona.ExecRequest, error) {
	var out daytona.ExecRequest
	if r.Command == nil || strings.TrimSpace(*r.Command) == "" {
		return out, apierr.BadRequest("missing_command", "command is required and must not be blank")
	}
	if strings.IndexByte(*r.Command, 0) >= 0 {
		return out, apierr.BadRequest("invalid_command", "command contains a NUL byte")
	}
	out.Command = *r.Command
	out.Timeout = min(defaultExecTimeout, maxTimeout)
	if r.TimeoutS != nil {
		ts := *r.TimeoutS
		if ts <= 0 || ts > int64(maxTimeout/time.Second) {
			return out, apierr.BadRequest("invalid_timeout", "timeout_s must be a whole number of seconds between 1 and "+strconv.FormatInt(int64(maxTimeout/time.Second), 10))
		}
		out.Timeout = time.Duration(ts) * time.Second
	}
	if r.Cwd != nil {
		cwd, err := clientpath.Thread(*r.Cwd)
		if err != nil {
			return out, apierr.BadRequest("invalid_cwd", "cwd: "+apierr.Message(err))
		}
		out.Cwd = cwd
	}
	if len(r.Env) > maxEnvVars {
		return out, apierr.BadRequest("invalid_env", "at most 256 environment variables")
	}
	for k, v := range r.Env {
		if !envNamePattern.MatchString(k) || len(k) > 255 {
			return out, apierr.BadRequest("invalid_env", "environment variable names must match [A-Za-z_][A-Za-z0-9_]*")
		}
		if strings.IndexByte(v, 0) >= 0 {
			return out, apierr.BadRequest("invalid_env", "environment variable "+k+" contains a NUL byte")
		}
	}
	out.Env = r.Env
	return out, nil
}

// exec is POST /v1/threads/{id}/exec. The thread's sandbox is started or
// recreated when needed; a warm thread goes straight to the toolbox.
func (t *Routes) exec(c echo.Context) error {
	var req execRequest
	if err := httpio.DecodeJSON(c, &req); err != nil {
		return err
	}
	dreq, err := req.validate(t.Config.MaxExecTimeout)
	if err != nil {
		return err
	}
	// The gateway keeps at most this much output, so a command that prints
	// gigabytes never costs the API server more than the limit.
	dreq.MaxOutput = t.Config.ExecOutputLimit
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	var res daytona.ExecResult
	timedOut := false
	err = t.Sandboxes.Use(c.Request().Context(), ref, sandbox.UseOptions{Need: dreq.Timeout + execGrace, Guard: t.guard(ref)},
		func(ctx context.Context, sb *sandbox.Sandbox) error {
			var err error
			res, err = sb.Toolbox.Exec(ctx, dreq)
			if errors.Is(err, daytona.ErrTimeout) {
				timedOut = true
				return nil
			}
			return err
		})
	if err != nil {
		return err
	}
	if timedOut {
		return c.JSON(http.StatusOK, execResponse{ExitCode: timedOutExitCode, TimedOut: true})
	}
	return c.JSON(http.StatusOK, execResponse{ExitCode: res.ExitCode, Output: res.Output, Truncated: res.Truncated})
}
