package threads

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/command"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/entity"
)

// Background commands: /v1/threads/{id}/commands. The work is package
// command's; these handlers only read requests and render answers.

// commandView is a command as clients see it.
type commandView struct {
	CommandID  string     `json:"command_id"`
	ThreadID   string     `json:"thread_id"`
	Command    string     `json:"command"`
	Cwd        *string    `json:"cwd"`
	Status     string     `json:"status"`
	ExitCode   *int       `json:"exit_code"`
	TimeoutS   int64      `json:"timeout_s"`
	Truncated  bool       `json:"truncated"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

func commandViewOf(c command.Command) commandView {
	v := commandView{
		CommandID: c.ID, ThreadID: c.ThreadID, Command: c.Command, Status: string(c.Status),
		ExitCode: c.ExitCode, TimeoutS: int64(c.Timeout / time.Second), Truncated: c.Truncated,
		StartedAt: c.StartedAt.UTC(), FinishedAt: c.FinishedAt,
	}
	if c.Cwd != "" {
		v.Cwd = &c.Cwd
	}
	if v.FinishedAt != nil {
		f := v.FinishedAt.UTC()
		v.FinishedAt = &f
	}
	return v
}

// commandOutputView is GET …/output: the command and what it printed so
// far; Truncated says that output was cut at the limit.
type commandOutputView struct {
	Command   commandView `json:"command"`
	Output    string      `json:"output"`
	Truncated bool        `json:"truncated"`
}

type commandList struct {
	Commands []commandView `json:"commands"`
}

// commandIDPattern is the shape of the ids threadbox hands out; anything
// else cannot name a command (404, like an unknown one).
var commandIDPattern = regexp.MustCompile(`^cmd-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// commandRef reads the thread and command ids of a command route.
func commandRef(c echo.Context) (entity.Ref, string, error) {
	ref, err := threadRef(c)
	if err != nil {
		return entity.Ref{}, "", err
	}
	id := c.Param("cid")
	if !commandIDPattern.MatchString(id) {
		return entity.Ref{}, "", command.ErrNotFound
	}
	return ref, id, nil
}

// commandRequest reads and checks the body of a command start (the body of
// exec, whose rules it shares).
func (t *Routes) commandRequest(c echo.Context) (execRequest, command.Request, error) {
	var req execRequest
	if err := httpio.DecodeJSON(c, &req); err != nil {
		return req, command.Request{}, err
	}
	dreq, err := req.validate(min(t.Config.MaxExecTimeout, command.MaxTimeout))
	if err != nil {
		return req, command.Request{}, err
	}
	return req, command.Request{Command: dreq.Command, Cwd: dreq.Cwd, Env: dreq.Env, Timeout: dreq.Timeout}, nil
}

// startCommand is POST /v1/threads/{id}/commands: 202 with the command as
// soon as the sandbox accepted it.
func (t *Routes) startCommand(c echo.Context) error {
	req, creq, err := t.commandRequest(c)
	if err != nil {
		return err
	}
	if req.KillOnDisconnect != nil {
		return apierr.BadRequest("invalid_parameter", "kill_on_disconnect applies to a streamed exec only")
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	cmd, err := t.Commands.Start(c.Request().Context(), ref, t.guard(ref), creq)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/threads/"+ref.ThreadID+"/commands/"+cmd.ID)
	return c.JSON(http.StatusAccepted, commandViewOf(cmd))
}

// listCommands is GET /v1/threads/{id}/commands: newest first.
func (t *Routes) listCommands(c echo.Context) error {
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := t.guard(ref)(ctx); err != nil {
		return err
	}
	cmds, err := t.Commands.List(ctx, ref, t.guard(ref))
	if err != nil {
		return err
	}
	out := commandList{Commands: make([]commandView, 0, len(cmds))}
	for _, cmd := range cmds {
		out.Commands = append(out.Commands, commandViewOf(cmd))
	}
	return c.JSON(http.StatusOK, out)
}

// getCommand is GET /v1/threads/{id}/commands/{cid}.
func (t *Routes) getCommand(c echo.Context) error {
	ref, id, err := commandRef(c)
	if err != nil {
		return err
	}
	cmd, err := t.Commands.Get(c.Request().Context(), ref, t.guard(ref), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, commandViewOf(cmd))
}

// commandOutput is GET /v1/threads/{id}/commands/{cid}/output: what the
// command printed so far, or with ?follow=true its output streamed as
// NDJSON until it ends (see exec_stream.go).
func (t *Routes) commandOutput(c echo.Context) error {
	ref, id, err := commandRef(c)
	if err != nil {
		return err
	}
	follow := false
	if v := c.QueryParam("follow"); v != "" {
		if follow, err = strconv.ParseBool(v); err != nil {
			return apierr.BadRequest("invalid_parameter", "follow must be true or false")
		}
	}
	if follow {
		return t.streamCommand(c, ref, id, false)
	}
	cmd, out, err := t.Commands.Output(c.Request().Context(), ref, t.guard(ref), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, commandOutputView{Command: commandViewOf(cmd), Output: out.Text, Truncated: out.Truncated})
}

type signalRequest struct {
	Signal *string `json:"signal"`
}

// signalCommand is POST /v1/threads/{id}/commands/{cid}/signal: 204 once
// the signal was delivered, 409 when the command has ended.
func (t *Routes) signalCommand(c echo.Context) error {
	var req signalRequest
	if err := httpio.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Signal == nil || !daytona.Signal(*req.Signal).Valid() {
		return apierr.BadRequest("invalid_signal", "signal must be one of TERM, KILL, INT, HUP, QUIT, USR1, USR2")
	}
	ref, id, err := commandRef(c)
	if err != nil {
		return err
	}
	if err := t.Commands.Signal(c.Request().Context(), ref, t.guard(ref), id, daytona.Signal(*req.Signal)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// stopCommand is DELETE /v1/threads/{id}/commands/{cid}: ends a running
// command (SIGTERM, SIGKILL after command.StopGrace) and answers 200 with
// it once its end is recorded; an ended command is answered as it is. The
// record stays (the thread's list keeps it).
func (t *Routes) stopCommand(c echo.Context) error {
	ref, id, err := commandRef(c)
	if err != nil {
		return err
	}
	cmd, err := t.Commands.Stop(c.Request().Context(), ref, t.guard(ref), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, commandViewOf(cmd))
}
