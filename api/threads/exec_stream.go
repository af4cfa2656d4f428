package threads

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/command"
	"github.com/threadbox/threadbox/entity"
)

// Streamed output: a streamed exec (POST …/exec with Accept:
// application/x-ndjson) and a followed command (GET …/commands/{cid}/output
// ?follow=true) answer 200 with chunked NDJSON, one JSON object a line,
// flushed as it comes:
//
//	{"type":"command","command":{…}}    first: the command being streamed
//	{"type":"output","data":"…"}        what it printed (stdout and stderr merged), in order
//	{"type":"exit","exit_code":0,…}     last, when it ended
//	{"type":"error","error":{…}}        last instead, when the stream broke off
//
// NDJSON rather than server-sent events: it is read line by line by any
// HTTP client (Python's requests/httpx iter_lines, fetch with a line
// splitter) and works with POST bodies and Authorization headers, which the
// browsers' EventSource does not send; SSE would add framing and a parser
// for nothing. A streamed exec is a background command the response
// follows: it has an id (the first line) and can be followed again from
// …/commands/{cid}/output?follow=true by a client that lost the stream.

// ndjsonType is the media type of streamed answers.
const ndjsonType = "application/x-ndjson"

// killOnDisconnectTimeout bounds the stop of a command whose client left.
const killOnDisconnectTimeout = command.StopGrace + 30*time.Second

// wantsStream reports whether the client asked for NDJSON.
func wantsStream(c echo.Context) bool {
	for _, part := range strings.Split(c.Request().Header.Get(echo.HeaderAccept), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == ndjsonType {
			return true
		}
	}
	return false
}

type commandEvent struct {
	Type    string      `json:"type"`
	Command commandView `json:"command"`
}

type outputEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

// exitEvent mirrors a plain exec's answer, with the command's status.
type exitEvent struct {
	Type      string `json:"type"`
	CommandID string `json:"command_id"`
	Status    string `json:"status"`
	ExitCode  *int   `json:"exit_code"`
	Truncated bool   `json:"truncated"`
	TimedOut  bool   `json:"timed_out"`
}

type errorEvent struct {
	Type string `json:"type"`
	apierr.Body
}

// eventStream writes NDJSON events; the response starts with the first.
type eventStream struct {
	c        echo.Context
	enc      *json.Encoder
	started  bool
	writeErr error // the client is gone
}

func (s *eventStream) send(v any) error {
	if s.writeErr != nil {
		return s.writeErr
	}
	h := s.c.Response().Header()
	if !s.started {
		h.Set(echo.HeaderContentType, ndjsonType)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
		s.c.Response().WriteHeader(http.StatusOK)
		s.started = true
	}
	if err := s.enc.Encode(v); err != nil {
		s.writeErr = err
		return err
	}
	s.c.Response().Flush()
	return nil
}

// Started and Output make an eventStream the command.Sink of a follow.
func (s *eventStream) Started(cmd command.Command) error {
	return s.send(commandEvent{Type: "command", Command: commandViewOf(cmd)})
}

func (s *eventStream) Output(data string) error {
	return s.send(outputEvent{Type: "output", Data: data})
}

// execStream is a streamed exec: the command starts as a background
// command and the response follows it to its end.
func (t *Routes) execStream(c echo.Context, req execRequest) error {
	dreq, err := req.validate(min(t.Config.MaxExecTimeout, command.MaxTimeout))
	if err != nil {
		return err
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	cmd, err := t.Commands.Start(c.Request().Context(), ref, t.guard(ref),
		command.Request{Command: dreq.Command, Cwd: dreq.Cwd, Env: dreq.Env, Timeout: dreq.Timeout})
	if err != nil {
		return err
	}
	return t.streamCommand(c, ref, cmd.ID, req.KillOnDisconnect != nil && *req.KillOnDisconnect)
}

// streamCommand follows a command into the response. A client that leaves
// does not stop the command, unless killOnDisconnect.
func (t *Routes) streamCommand(c echo.Context, ref entity.Ref, id string, killOnDisconnect bool) error {
	ctx := c.Request().Context()
	s := &eventStream{c: c, enc: json.NewEncoder(c.Response())}
	cmd, err := t.Commands.Follow(ctx, ref, t.guard(ref), id, s)
	switch {
	case err == nil:
		_ = s.send(exitEvent{Type: "exit", CommandID: cmd.ID, Status: string(cmd.Status), ExitCode: cmd.ExitCode,
			Truncated: cmd.Truncated, TimedOut: cmd.Status == command.TimedOut})
		return nil
	case s.writeErr != nil || ctx.Err() != nil:
		// The client left: there is nobody to answer.
		t.Logger.InfoContext(ctx, "the client of a command stream left", "command_id", id, "kill", killOnDisconnect, "err", err)
		if killOnDisconnect {
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killOnDisconnectTimeout)
			defer cancel()
			if _, err := t.Commands.Stop(kctx, ref, t.guard(ref), id); err != nil {
				t.Logger.WarnContext(kctx, "stopping a command whose client left failed; its timeout ends it", "command_id", id, "err", err)
			}
		}
		return nil
	case !s.started:
		return err
	}
	e := apierr.Classify(err)
	if apierr.ServerFault(e) {
		t.Logger.ErrorContext(ctx, "command stream broke off", "command_id", id, "err", err)
	}
	ev := errorEvent{Type: "error"}
	ev.Error.Code, ev.Error.Message = e.Code, e.Message
	_ = s.send(ev)
	return nil
}
