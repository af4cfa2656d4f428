package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
	toolbox "github.com/daytonaio/daytona/libs/toolbox-api-client-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConformanceToolboxFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{})
	fs := e.tb(sb).FileSystemAPI

	// Upload through the generated client (multipart "file").
	local := filepath.Join(t.TempDir(), "in.txt")
	require.NoError(t, os.WriteFile(local, []byte("hello world\nsecond line\n"), 0o644))
	f, err := os.Open(local)
	require.NoError(t, err)
	_, resp, err := fs.UploadFile(e.ctx).Path("/home/daytona/dir/a.txt").File(f).Execute()
	f.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// Download returns the bytes (the generated client writes a temp file).
	df, _, err := fs.DownloadFile(e.ctx).Path("dir/a.txt").Execute()
	require.NoError(t, err)
	got, err := io.ReadAll(df)
	df.Close()
	require.NoError(t, err)
	assert.Equal(t, "hello world\nsecond line\n", string(got))

	// Range requests work (like gin's c.File in the daemon).
	code, body, hdr := e.raw(http.MethodGet, "/toolbox/"+sb.Id+"/files/download?path="+q("/home/daytona/dir/a.txt"), nil, map[string]string{"Range": "bytes=6-10"})
	assert.Equal(t, http.StatusPartialContent, code)
	assert.Equal(t, "world", string(body))
	assert.Contains(t, e.val.mismatch, "DownloadFile 206")
	assert.Equal(t, "bytes 6-10/24", hdr.Get("Content-Range"))
	assert.Contains(t, hdr.Get("Content-Disposition"), `filename="a.txt"`)

	// Errors: missing → 404, directory → 400.
	_, resp, err = fs.DownloadFile(e.ctx).Path("/home/daytona/nope").Execute()
	status, _ := apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)
	_, resp, err = fs.DownloadFile(e.ctx).Path("/home/daytona/dir").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)

	// Info and list.
	info, _, err := fs.GetFileInfo(e.ctx).Path("/home/daytona/dir/a.txt").Execute()
	require.NoError(t, err)
	assert.Equal(t, "a.txt", info.Name)
	assert.Equal(t, int32(24), info.Size)
	assert.False(t, info.IsDir)
	assert.Equal(t, "0644", info.Permissions)
	_, err = time.Parse(time.RFC3339, info.ModifiedAt)
	assert.NoError(t, err)
	list, _, err := fs.ListFiles(e.ctx).Path("/home/daytona").Execute()
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "dir", list[0].Name)
	assert.True(t, list[0].IsDir)
	_, resp, err = fs.ListFiles(e.ctx).Path("/home/daytona/dir/a.txt").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status, "listing a file")
	_, resp, err = fs.GetFileInfo(e.ctx).Path("/nope").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)

	// Folder (201, idempotent MkdirAll) and bad mode.
	resp, err = fs.CreateFolder(e.ctx).Path("/home/daytona/x/y/z").Mode("0750").Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, err = fs.CreateFolder(e.ctx).Path("/home/daytona/x/y/z").Mode("0750").Execute()
	require.NoError(t, err)
	resp, err = fs.CreateFolder(e.ctx).Path("/home/daytona/q").Mode("9x").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)

	// Move: OK, destination exists → 409, source missing → 404.
	resp, err = fs.MoveFile(e.ctx).Source("/home/daytona/dir/a.txt").Destination("/home/daytona/x/b.txt").Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = fs.MoveFile(e.ctx).Source("/home/daytona/x/b.txt").Destination("/home/daytona/x/y").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusConflict, status)
	resp, err = fs.MoveFile(e.ctx).Source("/home/daytona/dir/a.txt").Destination("/home/daytona/c.txt").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)

	// Search and find.
	sr, _, err := fs.SearchFiles(e.ctx).Path("/home/daytona").Pattern("*.txt").Execute()
	require.NoError(t, err)
	assert.Equal(t, []string{"/home/daytona/x/b.txt"}, sr.Files)
	matches, _, err := fs.FindInFiles(e.ctx).Path("/home/daytona").Pattern("second").Execute()
	require.NoError(t, err)
	require.Len(t, matches, 1)
	assert.Equal(t, "/home/daytona/x/b.txt", matches[0].File)
	assert.Equal(t, int32(2), matches[0].Line)
	assert.Equal(t, "second line", matches[0].Content)

	// Delete: dir without recursive → 400; recursive → 204; missing → 404.
	resp, err = fs.DeleteFile(e.ctx).Path("/home/daytona/x").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status, "a directory without recursive")
	resp, err = fs.DeleteFile(e.ctx).Path("/home/daytona/x").Recursive(true).Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, err = fs.DeleteFile(e.ctx).Path("/home/daytona/x").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)

	// Home and work dir.
	hd, _, err := e.tb(sb).InfoAPI.GetUserHomeDir(e.ctx).Execute()
	require.NoError(t, err)
	assert.Equal(t, "/home/daytona", hd.Dir)
	wd, _, err := e.tb(sb).InfoAPI.GetWorkDir(e.ctx).Execute()
	require.NoError(t, err)
	assert.Equal(t, "/home/daytona", wd.Dir)

	// Unknown sandbox → 404.
	code, _, _ = e.raw(http.MethodGet, "/toolbox/00000000-0000-0000-0000-000000000000/work-dir", nil, nil)
	assert.Equal(t, http.StatusNotFound, code)
}

func TestConformanceToolboxBulk(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{})

	// Bulk upload: files[i].path before files[i].file, streamed.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	files := map[string]string{"/home/daytona/b/one.txt": "111", "/home/daytona/b/sub/two.bin": "2222"}
	i := 0
	order := []string{"/home/daytona/b/one.txt", "/home/daytona/b/sub/two.bin"}
	for _, p := range order {
		idx := string(rune('0' + i))
		require.NoError(t, mw.WriteField("files["+idx+"].path", p))
		fw, err := mw.CreateFormFile("files["+idx+"].file", p)
		require.NoError(t, err)
		_, _ = fw.Write([]byte(files[p]))
		i++
	}
	// A file part without its path → per-item error.
	fw, err := mw.CreateFormFile("files[9].file", "orphan")
	require.NoError(t, err)
	_, _ = fw.Write([]byte("x"))
	require.NoError(t, mw.Close())
	code, body, _ := e.raw(http.MethodPost, "/toolbox/"+sb.Id+"/files/bulk-upload", &buf, map[string]string{"Content-Type": mw.FormDataContentType()})
	assert.Equal(t, http.StatusBadRequest, code)
	var up struct {
		Files []struct {
			Path  string `json:"path"`
			Bytes int64  `json:"bytes"`
		} `json:"files"`
		Errors []string `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(body, &up))
	require.Len(t, up.Files, 2)
	assert.Equal(t, int64(4), up.Files[1].Bytes)
	require.Len(t, up.Errors, 1)
	assert.Contains(t, up.Errors[0], "missing .path metadata")

	// Bulk download: one part per path in order, "file" or "error".
	reqBody, _ := json.Marshal(map[string][]string{"paths": {"/home/daytona/b/one.txt", "/home/daytona/missing", "/home/daytona/b/sub/two.bin"}})
	code, body, hdr := e.raw(http.MethodPost, "/toolbox/"+sb.Id+"/files/bulk-download", bytes.NewReader(reqBody), map[string]string{"Content-Type": "application/json", "Accept": "multipart/form-data"})
	require.Equal(t, http.StatusOK, code)
	mt, params, err := mime.ParseMediaType(hdr.Get("Content-Type"))
	require.NoError(t, err)
	assert.Equal(t, "multipart/form-data", mt)
	assert.Equal(t, "DAYTONA-FILE-BOUNDARY", params["boundary"])
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	type part struct{ name, file, body string }
	var parts []part
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, _ := io.ReadAll(p)
		// Part.FileName() strips directories; the daemon sends the full path.
		_, cd, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		require.NoError(t, err)
		parts = append(parts, part{p.FormName(), cd["filename"], string(b)})
	}
	require.Len(t, parts, 3)
	assert.Equal(t, part{"file", "/home/daytona/b/one.txt", "111"}, parts[0])
	assert.Equal(t, "error", parts[1].name)
	assert.Contains(t, parts[1].body, "FILE_NOT_FOUND")
	assert.Equal(t, part{"file", "/home/daytona/b/sub/two.bin", "2222"}, parts[2])
	assert.Contains(t, e.val.mismatch, "DownloadFiles 200", "allow-listed multipart response seen")

	code, _, _ = e.raw(http.MethodPost, "/toolbox/"+sb.Id+"/files/bulk-download", strings.NewReader(`{"paths":[]}`), map[string]string{"Content-Type": "application/json"})
	assert.Equal(t, http.StatusBadRequest, code)
}

func TestConformanceToolboxExecute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{Env: &map[string]string{"SANDBOX_VAR": "sv"}})
	p := e.tb(sb).ProcessAPI
	run := func(req toolbox.ExecuteRequest) (*toolbox.ExecuteResponse, *http.Response, error) {
		return p.ExecuteCommand(e.ctx).Request(req).Execute()
	}

	res, _, err := run(toolbox.ExecuteRequest{Command: "echo out; echo err >&2; pwd; echo $HOME $SANDBOX_VAR $REQ_VAR; exit 3",
		Envs: &map[string]string{"REQ_VAR": "rv"}})
	require.NoError(t, err)
	assert.Equal(t, int32(3), res.GetExitCode())
	assert.Contains(t, res.Result, "out\n")
	assert.Contains(t, res.Result, "err\n", "stderr is combined")
	assert.Contains(t, res.Result, "/home/daytona\n")
	assert.Contains(t, res.Result, "/home/daytona sv rv\n", "HOME, sandbox env and request env")

	// Script semantics: the command is piped on stdin.
	res, _, err = run(toolbox.ExecuteRequest{Command: "X=1\nif [ $X = 1 ]; then echo multi; fi | tr a-z A-Z"})
	require.NoError(t, err)
	assert.Equal(t, "MULTI\n", res.Result)

	// cwd: relative to home; missing → exitCode -1.
	_, err = e.tb(sb).FileSystemAPI.CreateFolder(e.ctx).Path("work").Mode("0755").Execute()
	require.NoError(t, err)
	res, _, err = run(toolbox.ExecuteRequest{Command: "pwd", Cwd: toolbox.PtrString("work")})
	require.NoError(t, err)
	assert.Equal(t, "/home/daytona/work\n", res.Result)
	res, _, err = run(toolbox.ExecuteRequest{Command: "pwd", Cwd: toolbox.PtrString("/does/not/exist")})
	require.NoError(t, err)
	assert.Equal(t, int32(-1), res.GetExitCode())
	assert.Contains(t, res.Result, "no such file or directory")

	// Timeout → 408 and the process group is killed (the background child too).
	start := time.Now()
	_, resp, err := run(toolbox.ExecuteRequest{Command: "(sleep 30; echo late > /home/daytona/late) & sleep 30", Timeout: toolbox.PtrInt32(1)})
	status, msg := apiErr(t, resp, err)
	assert.Equal(t, http.StatusRequestTimeout, status)
	assert.Equal(t, "request timeout: command execution timeout", msg)
	assert.Less(t, time.Since(start), 6*time.Second)

	// Validation.
	_, resp, err = run(toolbox.ExecuteRequest{Command: "   "})
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	_, resp, err = run(toolbox.ExecuteRequest{Command: "true", Envs: &map[string]string{"1BAD": "x"}})
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "bad request: invalid environment variable name: '1BAD'", msg)

	// Stop kills running commands.
	done := make(chan *toolbox.ExecuteResponse, 1)
	go func() {
		r, _, _ := run(toolbox.ExecuteRequest{Command: "sleep 30; echo finished"})
		done <- r
	}()
	time.Sleep(300 * time.Millisecond)
	_, _, err = e.api.SandboxAPI.StopSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	select {
	case r := <-done:
		require.NotNil(t, r)
		assert.NotContains(t, r.Result, "finished")
		assert.NotEqual(t, int32(0), r.GetExitCode())
	case <-time.After(8 * time.Second):
		t.Fatal("stop did not kill the running command")
	}
}

// assertEmptyError checks the daemon's file-error shape: the status alone.
func assertEmptyError(t *testing.T, wantStatus, status int, body []byte, hdr http.Header, what string) {
	t.Helper()
	assert.Equal(t, wantStatus, status, what)
	assert.Empty(t, string(body), what)
	assert.Equal(t, "0", hdr.Get("Content-Length"), what)
	assert.Empty(t, hdr.Get("Content-Type"), what)
}

// Facts 1, 5 (files), 6 and 7 of issue 11: what the daemon answers on the
// file routes, byte for byte where it matters to a client.
func TestConformanceToolboxDaemonFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{})
	base := "/toolbox/" + sb.Id
	e.upload(sb, "/home/daytona/d/f.txt", "file")
	e.upload(sb, "/home/daytona/g.txt", "other")

	// Fact 1: every /files error is the status alone, with no reason text.
	for _, c := range []struct {
		what, method, path string
		status             int
	}{
		{"info of a missing file", http.MethodGet, "/files/info?path=" + q("/home/daytona/nope"), http.StatusNotFound},
		{"download of a missing file", http.MethodGet, "/files/download?path=" + q("/home/daytona/nope"), http.StatusNotFound},
		{"download of a directory", http.MethodGet, "/files/download?path=" + q("/home/daytona/d"), http.StatusBadRequest},
		{"list of a file", http.MethodGet, "/files?path=" + q("/home/daytona/g.txt"), http.StatusBadRequest},
		{"list of a missing directory", http.MethodGet, "/files?path=" + q("/home/daytona/nope"), http.StatusNotFound},
		{"bad mode", http.MethodPost, "/files/folder?path=" + q("/home/daytona/m") + "&mode=9x", http.StatusBadRequest},
		{"NUL byte", http.MethodGet, "/files/info?path=%2Fhome%00x", http.StatusBadRequest},
		{"name too long", http.MethodGet, "/files/info?path=" + q("/home/daytona/"+strings.Repeat("n", 300)), http.StatusBadRequest},
		{"move onto an existing file", http.MethodPost, "/files/move?source=" + q("/home/daytona/g.txt") + "&destination=" + q("/home/daytona/d/f.txt"), http.StatusConflict},
		{"move of a missing file", http.MethodPost, "/files/move?source=" + q("/home/daytona/nope") + "&destination=" + q("/home/daytona/x"), http.StatusNotFound},
		{"delete of a directory without recursive", http.MethodDelete, "/files?path=" + q("/home/daytona/d"), http.StatusBadRequest},
		{"delete of a missing file", http.MethodDelete, "/files?path=" + q("/home/daytona/nope"), http.StatusNotFound},
	} {
		code, body, hdr := e.raw(c.method, base+c.path, nil, nil)
		assertEmptyError(t, c.status, code, body, hdr, c.what)
	}
	code, body, hdr := e.plain(http.MethodGet, base+"/files/info", nil, nil) // path is required by the document
	assertEmptyError(t, http.StatusBadRequest, code, body, hdr, "no path")
	got, code := e.download(sb, "/home/daytona/d/f.txt")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "file", got, "a refused move leaves the destination alone")

	// Fact 5: HEAD of a download is gin's 404; "/files/" lists like "/files".
	code, body, hdr = e.plain(http.MethodHead, base+"/files/download?path="+q("/home/daytona/g.txt"), nil, nil)
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, "text/plain", hdr.Get("Content-Type"))
	assert.Empty(t, body, "HEAD has no body")
	code, slash, _ := e.plain(http.MethodGet, base+"/files/?path="+q("/home/daytona"), nil, nil)
	require.Equal(t, http.StatusOK, code)
	_, plain, _ := e.raw(http.MethodGet, base+"/files?path="+q("/home/daytona"), nil, nil)
	assert.JSONEq(t, string(plain), string(slash))

	// Fact 5: modifiedAt keeps the nanoseconds.
	when := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)
	require.NoError(t, os.Chtimes(filepath.Join(e.srv.sandboxRoot(sb.Id), "home/daytona/g.txt"), when, when))
	info, _, err := e.tb(sb).FileSystemAPI.GetFileInfo(e.ctx).Path("/home/daytona/g.txt").Execute()
	require.NoError(t, err)
	assert.Equal(t, "2025-03-04T05:06:07.123456789Z", info.ModifiedAt)

	// Fact 6: bulk-upload item errors name the sandbox path, never a host path.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	require.NoError(t, mw.WriteField("files[0].path", "/home/daytona/d"))
	fw, err := mw.CreateFormFile("files[0].file", "d")
	require.NoError(t, err)
	_, _ = fw.Write([]byte("x"))
	require.NoError(t, mw.WriteField("files[1].path", "/home/daytona/g.txt/under"))
	fw, err = mw.CreateFormFile("files[1].file", "under")
	require.NoError(t, err)
	_, _ = fw.Write([]byte("y"))
	require.NoError(t, mw.Close())
	code, body, _ = e.raw(http.MethodPost, base+"/files/bulk-upload", &buf, map[string]string{"Content-Type": mw.FormDataContentType()})
	assert.Equal(t, http.StatusBadRequest, code)
	var up struct {
		Errors []string `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(body, &up))
	require.Len(t, up.Errors, 2)
	assert.Equal(t, "/home/daytona/d: create: open /home/daytona/d: is a directory", up.Errors[0])
	assert.Equal(t, "/home/daytona/g.txt/under: create: mkdir /home/daytona/g.txt: not a directory", up.Errors[1])
	assert.NotContains(t, string(body), e.srv.baseDir, "no host path in the answer")

	// Fact 7: an unknown route or a wrong method is gin's plain 404.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, base + "/nope"},
		{http.MethodPut, base + "/files"},
		{http.MethodGet, base + "/process/execute"},
	} {
		code, body, hdr := e.plain(c.method, c.path, nil, nil)
		assert.Equal(t, http.StatusNotFound, code, c.method+" "+c.path)
		assert.Equal(t, "text/plain", hdr.Get("Content-Type"), c.method+" "+c.path)
		assert.Equal(t, "404 page not found", string(body), c.method+" "+c.path)
	}
}

// Facts 2 to 5 (execute) of issue 11: a command belongs to the sandbox, not
// to the request that started it.
func TestConformanceToolboxDaemonExecute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{})
	p := e.tb(sb).ProcessAPI
	exists := func(path string) func() bool {
		return func() bool { _, code := e.download(sb, path); return code == http.StatusOK }
	}

	// Fact 2: a background job outlives the call (its output redirected, it
	// does not hold the call).
	res, _, err := p.ExecuteCommand(e.ctx).Request(toolbox.ExecuteRequest{
		Command: "(sleep 1; echo late > /home/daytona/bg.txt) >/dev/null 2>&1 &\necho started"}).Execute()
	require.NoError(t, err)
	assert.Equal(t, "started\n", res.Result)
	assert.False(t, exists("/home/daytona/bg.txt")(), "the job has not finished when the call returns")
	require.Eventually(t, exists("/home/daytona/bg.txt"), 10*time.Second, 50*time.Millisecond, "the job survived the call")

	// Fact 4: a background job that keeps stdout open keeps the call open
	// until it closes stdout.
	start := time.Now()
	res, _, err = p.ExecuteCommand(e.ctx).Request(toolbox.ExecuteRequest{Command: "echo hi; sleep 2 &"}).Execute()
	require.NoError(t, err)
	assert.Equal(t, "hi\n", res.Result)
	assert.GreaterOrEqual(t, time.Since(start), 1900*time.Millisecond, "answered before the job closed stdout")

	// Fact 3: a client that hangs up does not stop the command.
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	_, _, err = p.ExecuteCommand(ctx).Request(toolbox.ExecuteRequest{Command: "sleep 1; echo done > /home/daytona/hangup.txt"}).Execute()
	cancel()
	require.Error(t, err, "the client gave up")
	require.Eventually(t, exists("/home/daytona/hangup.txt"), 10*time.Second, 50*time.Millisecond, "the command ran to completion")

	// Fact 5: execute's 400s start with "bad request: " (application/json,
	// no charset); a missing cwd is a 200 with exitCode -1 and exec's message.
	body, _ := json.Marshal(map[string]string{"command": "  \n "})
	code, raw, hdr := e.raw(http.MethodPost, "/toolbox/"+sb.Id+"/process/execute", bytes.NewReader(body), map[string]string{"Content-Type": "application/json"})
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "application/json", hdr.Get("Content-Type"))
	var eb toolboxErrorBody
	require.NoError(t, json.Unmarshal(raw, &eb))
	assert.Equal(t, "bad request: command cannot be empty or whitespace-only", eb.Message)
	assert.Equal(t, "BAD_REQUEST", eb.Code)
	res, _, err = p.ExecuteCommand(e.ctx).Request(toolbox.ExecuteRequest{Command: "pwd", Cwd: toolbox.PtrString("/no/such/dir")}).Execute()
	require.NoError(t, err)
	assert.Equal(t, int32(-1), res.GetExitCode())
	assert.Equal(t, "fork/exec /usr/bin/bash: no such file or directory", res.Result)
	res, _, err = p.ExecuteCommand(e.ctx).Request(toolbox.ExecuteRequest{Command: "pwd", Cwd: toolbox.PtrString("/home/daytona/bg.txt")}).Execute()
	require.NoError(t, err)
	assert.Equal(t, int32(-1), res.GetExitCode())
	assert.Equal(t, "fork/exec /usr/bin/bash: not a directory", res.Result)
}
