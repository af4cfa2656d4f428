package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/internal/testenv"
)

// commandJSON is a background command as the API answers it.
type commandJSON struct {
	CommandID  string     `json:"command_id"`
	ThreadID   string     `json:"thread_id"`
	Command    string     `json:"command"`
	Cwd        *string    `json:"cwd"`
	Status     string     `json:"status"`
	ExitCode   *int       `json:"exit_code"`
	TimeoutS   int        `json:"timeout_s"`
	Truncated  bool       `json:"truncated"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// outputJSON is GET …/output: a command and what it printed.
type outputJSON struct {
	Command   commandJSON `json:"command"`
	Output    string      `json:"output"`
	Truncated bool        `json:"truncated"`
}

// startCommand starts a background command and checks the 202.
func (c tc) startCommand(thread string, body map[string]any) commandJSON {
	c.t.Helper()
	resp, b := c.call(http.MethodPost, "/v1/threads/"+thread+"/commands", body)
	require.Equal(c.t, http.StatusAccepted, resp.StatusCode, string(b))
	var cmd commandJSON
	require.NoError(c.t, json.Unmarshal(b, &cmd))
	require.Equal(c.t, "/v1/threads/"+thread+"/commands/"+cmd.CommandID, resp.Header.Get("Location"))
	return cmd
}

// command reads a command.
func (c tc) command(thread, id string) commandJSON {
	c.t.Helper()
	resp, b := c.call(http.MethodGet, "/v1/threads/"+thread+"/commands/"+id, nil)
	require.Equal(c.t, http.StatusOK, resp.StatusCode, string(b))
	var cmd commandJSON
	require.NoError(c.t, json.Unmarshal(b, &cmd))
	return cmd
}

// output reads a command with what it printed so far.
func (c tc) output(thread, id string) outputJSON {
	c.t.Helper()
	resp, b := c.call(http.MethodGet, "/v1/threads/"+thread+"/commands/"+id+"/output", nil)
	require.Equal(c.t, http.StatusOK, resp.StatusCode, string(b))
	var out outputJSON
	require.NoError(c.t, json.Unmarshal(b, &out))
	require.Equal(c.t, id, out.Command.CommandID)
	return out
}

// waitCommand waits until a command ended and returns it with its output.
func (c tc) waitCommand(thread, id string, within time.Duration) outputJSON {
	c.t.Helper()
	testenv.Eventually(c.t, within, "command "+id+" to end", func() bool {
		return c.command(thread, id).Status != "running"
	})
	return c.output(thread, id)
}

// event is one line of a streamed answer, with the moment it arrived.
type event struct {
	Type      string       `json:"type"`
	Command   *commandJSON `json:"command"`
	CommandID string       `json:"command_id"`
	Status    string       `json:"status"`
	Data      string       `json:"data"`
	ExitCode  *int         `json:"exit_code"`
	Truncated bool         `json:"truncated"`
	TimedOut  bool         `json:"timed_out"`
	Error     *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	at time.Time
}

// stream sends a request whose answer is NDJSON and returns the response
// and a reader of its events (the caller closes the body). The exchange goes
// through env.HTTP (status and headers checked against the OpenAPI
// document), and every event is checked against the document's
// CommandStreamEvent.
func (c tc) stream(method, path string, body any) (*http.Response, func() (event, bool)) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.env.URL+path, r)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/x-ndjson")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.env.HTTP.Do(req)
	require.NoError(c.t, err)
	schema := testenv.APIDocument(c.t).Components.Schemas["CommandStreamEvent"]
	require.NotNil(c.t, schema, "the OpenAPI document has no CommandStreamEvent")
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	return resp, func() (event, bool) {
		if !sc.Scan() {
			require.NoError(c.t, sc.Err(), "reading the stream")
			return event{}, false
		}
		var raw any
		require.NoError(c.t, json.Unmarshal(sc.Bytes(), &raw), sc.Text())
		require.NoError(c.t, schema.Value.VisitJSON(raw, openapi3.EnableJSONSchema2020()), "an event the document does not describe: %s", sc.Text())
		var e event
		require.NoError(c.t, json.Unmarshal(sc.Bytes(), &e), sc.Text())
		e.at = time.Now()
		return e, true
	}
}

// follow follows a command to its end and returns its events.
func (c tc) follow(thread, id string) []event {
	c.t.Helper()
	resp, next := c.stream(http.MethodGet, "/v1/threads/"+thread+"/commands/"+id+"/output?follow=true", nil)
	defer resp.Body.Close()
	require.Equal(c.t, http.StatusOK, resp.StatusCode)
	return readAll(next)
}

// exitCode is a reported exit code, which must be there.
func exitCode(t *testing.T, code *int) int {
	t.Helper()
	require.NotNil(t, code, "no exit code")
	return *code
}

// readAll reads every event of a stream.
func readAll(next func() (event, bool)) []event {
	var out []event
	for {
		e, ok := next()
		if !ok {
			return out
		}
		out = append(out, e)
	}
}

// outputOf joins the output events of a stream.
func outputOf(events []event) string {
	var b bytes.Buffer
	for _, e := range events {
		if e.Type == "output" {
			b.WriteString(e.Data)
		}
	}
	return b.String()
}

// requireSandboxUp checks every 200 ms until `until` that the sandbox runs.
func requireSandboxUp(t *testing.T, env *testenv.Env, sandboxID string, until time.Time) {
	t.Helper()
	for time.Now().Before(until) {
		require.Equal(t, "started", string(sandboxState(t, env, sandboxID)), "the sandbox stopped under a running command")
		time.Sleep(200 * time.Millisecond)
	}
}
