package emulator

import (
	"bytes"
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
	status, msg := apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, msg, "recursive")
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
	assert.Equal(t, "invalid environment variable name: '1BAD'", msg)

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
