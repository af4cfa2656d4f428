package daytona

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	toolbox "github.com/daytonaio/daytona/libs/toolbox-api-client-go"
)

// execGrace is added to a command's timeout for the client-side deadline, so the server's
// 408 (the precise answer) normally arrives before our own cut-off.
const execGrace = 30 * time.Second

// Toolbox runs commands and moves files inside one sandbox through Daytona's toolbox proxy
// ({toolboxProxyUrl}/{sandboxId}). It is cheap to create and safe for concurrent use.
type Toolbox struct {
	g    *Gateway
	id   string
	base string
	api  *toolbox.APIClient
}

// Toolbox returns the toolbox client of a sandbox. toolboxURL is Sandbox.ToolboxURL
// (toolboxProxyUrl + "/" + id); it makes no network call, so callers can cache sandbox id
// and URL and skip the control plane on the hot path.
func (g *Gateway) Toolbox(sandboxID, toolboxURL string) *Toolbox {
	base := strings.TrimRight(toolboxURL, "/")
	tc := toolbox.NewConfiguration()
	tc.Servers = toolbox.ServerConfigurations{{URL: base}}
	tc.HTTPClient = g.tbHTTP
	tc.UserAgent = "threadbox"
	t := &Toolbox{g: g, id: sandboxID, base: base}
	for k, v := range t.headers() {
		tc.AddDefaultHeader(k, v)
	}
	t.api = toolbox.NewAPIClient(tc)
	return t
}

// toolboxClientVersion is the version of the toolbox API client threadbox
// speaks. Sent as X-Daytona-SDK-Version, it makes the daemon answer session
// output the way the v0.190.0 document describes (stdout and stderr apart,
// logs as JSON, marked log streams) instead of its format for old SDKs.
const toolboxClientVersion = "0.190.0"

// headers are sent on every toolbox call, generated or raw (with the
// User-Agent "threadbox", which the generated client sets itself).
func (t *Toolbox) headers() map[string]string {
	return map[string]string{
		"Authorization":         "Bearer " + t.g.cfg.APIKey,
		"X-Daytona-Source":      sourceHeader,
		"X-Daytona-SDK-Version": toolboxClientVersion,
	}
}

// SandboxID is the sandbox this toolbox talks to.
func (t *Toolbox) SandboxID() string { return t.id }

// shortCtx applies ToolboxTimeout to quick toolbox calls.
func (t *Toolbox) shortCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, t.g.cfg.ToolboxTimeout)
}

// Exec runs r.Command through the sandbox shell (as a script: pipes and && work) and returns
// the exit code and combined stdout+stderr. A non-zero exit is a result, not an error. When
// the command outlives r.Timeout Daytona answers 408 and Exec returns ErrTimeout. There is
// no client-side cap beyond ctx and r.Timeout (+30s grace); r.Timeout 0 means none.
func (t *Toolbox) Exec(ctx context.Context, r ExecRequest) (ExecResult, error) {
	const op = "exec"
	if strings.TrimSpace(r.Command) == "" {
		return ExecResult{}, &Error{Kind: ErrBadRequest, Op: op, Message: "command is empty"}
	}
	req := toolbox.ExecuteRequest{Command: r.Command}
	if r.Cwd != "" {
		req.Cwd = ptr(r.Cwd)
	}
	if len(r.Env) > 0 {
		req.Envs = &r.Env
	}
	parent := ctx
	if r.Timeout > 0 {
		secs := math.Ceil(r.Timeout.Seconds())
		if secs > math.MaxInt32 {
			secs = math.MaxInt32
		}
		req.Timeout = ptr(int32(secs))
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout+execGrace)
		defer cancel()
	}
	// The request is the generated model; the response is decoded by hand so that at most
	// MaxOutput bytes of the output are ever held (see decodeExecResponse).
	body, err := json.Marshal(req)
	if err != nil {
		return ExecResult{}, &Error{Kind: ErrBadRequest, Op: op, Err: err}
	}
	hreq, err := t.newRequest(ctx, http.MethodPost, t.endpoint("/process/execute", nil), bytes.NewReader(body))
	if err != nil {
		return ExecResult{}, &Error{Kind: ErrBadRequest, Op: op, Err: err}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	resp, err := t.do(op, classExecute, hreq)
	if err != nil {
		var de *Error
		if r.Timeout > 0 && errors.As(err, &de) && de.Status == 0 && ctx.Err() != nil && parent.Err() == nil {
			// Our own deadline (timeout + grace) fired before the server's 408.
			return ExecResult{}, &Error{Kind: ErrTimeout, Op: op, Message: "no answer within the command timeout", Err: err}
		}
		return ExecResult{}, err
	}
	defer resp.Body.Close()
	out, truncated, err := decodeExecResponse(resp.Body, r.MaxOutput)
	if err != nil {
		return ExecResult{}, mapErr(op, classExecute, nil, err)
	}
	out.Truncated = truncated
	return out, nil
}

// wireFileInfo is the toolbox FileInfo JSON. Decoded by hand because the generated model
// types size as int32, which cannot represent files over 2 GiB.
type wireFileInfo struct {
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	IsDir      bool   `json:"isDir"`
	Mode       string `json:"mode"`
	ModTime    string `json:"modTime"`
	ModifiedAt string `json:"modifiedAt"`
}

func (w wireFileInfo) toFileInfo() FileInfo {
	fi := FileInfo{Name: w.Name, Size: w.Size, IsDir: w.IsDir, Mode: w.Mode}
	if t, err := time.Parse(time.RFC3339Nano, w.ModifiedAt); err == nil {
		fi.ModTime = t
	} else if t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", w.ModTime); err == nil {
		fi.ModTime = t
	}
	return fi
}

// endpoint builds base + path + query.
func (t *Toolbox) endpoint(path string, q url.Values) string {
	u := t.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// newRequest builds a raw toolbox request with the same headers as the generated client.
func (t *Toolbox) newRequest(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range t.headers() {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "threadbox")
	return req, nil
}

// do sends a raw toolbox request; a status >= 400 becomes an *Error (the body is read, at
// most 64 KiB, for Daytona's message).
func (t *Toolbox) do(op string, class callClass, req *http.Request) (*http.Response, error) {
	resp, err := t.g.tbHTTP.Do(req)
	if err != nil {
		return nil, mapErr(op, class, nil, err)
	}
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, statusErr(op, class, resp, body)
	}
	return resp, nil
}

func (t *Toolbox) getJSON(ctx context.Context, op, path string, q url.Values, v any) error {
	ctx, cancel := t.shortCtx(ctx)
	defer cancel()
	req, err := t.newRequest(ctx, http.MethodGet, t.endpoint(path, q), nil)
	if err != nil {
		return &Error{Kind: ErrBadRequest, Op: op, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := t.do(op, classPlain, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return &Error{Kind: ErrUnavailable, Op: op, Status: resp.StatusCode, Message: "undecodable response", Err: err}
	}
	return nil
}

// List returns the entries of directory dir (sorted by name, as Daytona does). A missing
// directory is ErrNotFound; a file is ErrBadRequest.
func (t *Toolbox) List(ctx context.Context, dir string) ([]FileInfo, error) {
	var wire []wireFileInfo
	if err := t.getJSON(ctx, "list files", "/files", url.Values{"path": {dir}}, &wire); err != nil {
		return nil, err
	}
	out := make([]FileInfo, len(wire))
	for i, w := range wire {
		out[i] = w.toFileInfo()
	}
	return out, nil
}

// Stat describes one file or directory (ErrNotFound when missing).
func (t *Toolbox) Stat(ctx context.Context, path string) (FileInfo, error) {
	var w wireFileInfo
	if err := t.getJSON(ctx, "stat file", "/files/info", url.Values{"path": {path}}, &w); err != nil {
		return FileInfo{}, err
	}
	return w.toFileInfo(), nil
}

// Delete removes a file, or a directory when recursive (a directory without recursive is
// ErrBadRequest). Missing is ErrNotFound: callers that want idempotence check errors.Is.
func (t *Toolbox) Delete(ctx context.Context, path string, recursive bool) error {
	ctx, cancel := t.shortCtx(ctx)
	defer cancel()
	req := t.api.FileSystemAPI.DeleteFile(ctx).Path(path)
	if recursive {
		req = req.Recursive(true)
	}
	resp, err := req.Execute()
	return mapErr("delete file", classPlain, resp, err)
}

// Move renames from to to. Daytona never overwrites: an existing destination is
// ErrConflict; a missing source or destination parent is ErrNotFound. Across filesystems
// (e.g. onto a volume) Daytona copies and deletes, which can take long, so only ctx bounds it.
func (t *Toolbox) Move(ctx context.Context, from, to string) error {
	resp, err := t.api.FileSystemAPI.MoveFile(ctx).Source(from).Destination(to).Execute()
	return mapErr("move file", classPlain, resp, err)
}

// Mkdir creates a directory and its parents (mode 0755); existing is success.
func (t *Toolbox) Mkdir(ctx context.Context, path string) error {
	ctx, cancel := t.shortCtx(ctx)
	defer cancel()
	resp, err := t.api.FileSystemAPI.CreateFolder(ctx).Path(path).Mode("0755").Execute()
	return mapErr("create folder", classPlain, resp, err)
}
