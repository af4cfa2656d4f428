package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/internal/testenv"
)

// TestThreadFilesAndBadInput exercises the file routes on a live thread and
// every route's refusals: unknown threads, bad commands, timeouts, paths,
// bodies, content types, lease ttls and lease ids. Nothing refused may touch
// the sandbox: a canary file proves the bad paths changed nothing.
func TestThreadFilesAndBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	t.Parallel()
	env := testenv.New(t, testenv.Options{AutoStop: time.Minute, AutoDelete: time.Minute,
		Configure: func(c *config.Config) {
			c.MaxBodyBytes = 1 << 16
			c.ExecOutputLimit = 1000
			c.MaxExecTimeout = 10 * time.Minute
		}})
	c := newTC(t, env, env.UserKey)
	status, _ := c.create("files")
	require.Equal(t, http.StatusCreated, status)

	t.Run("files", func(t *testing.T) {
		c := newTC(t, env, env.UserKey)
		resp, body := c.raw(http.MethodPut, "/v1/threads/files/files?path=dir/sub/a.txt", "text/plain", strings.NewReader("hello world"))
		require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
		require.JSONEq(t, `{"path":"/home/daytona/dir/sub/a.txt","size":11}`, string(body))

		resp, body = c.raw(http.MethodGet, "/v1/threads/files/files?path=/home/daytona/dir/sub/a.txt", "", nil)
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "hello world", string(body))
		require.Equal(t, "11", resp.Header.Get("Content-Length"))
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))

		req, _ := http.NewRequest(http.MethodGet, env.URL+"/v1/threads/files/files?path=dir/sub/a.txt", nil)
		req.Header.Set("Authorization", "Bearer "+env.UserKey)
		req.Header.Set("Range", "bytes=6-")
		rr, err := env.HTTP.Do(req)
		require.NoError(t, err)
		rb := new(bytes.Buffer)
		_, _ = rb.ReadFrom(rr.Body)
		rr.Body.Close()
		require.Equal(t, http.StatusPartialContent, rr.StatusCode)
		require.Equal(t, "world", rb.String())
		require.Equal(t, "bytes 6-10/11", rr.Header.Get("Content-Range"))

		resp, body = c.raw(http.MethodGet, "/v1/threads/files/files?path=dir/sub", "", nil)
		require.Equal(t, 200, resp.StatusCode, string(body))
		var listing struct {
			Entries []struct {
				Name  string `json:"name"`
				Size  int64  `json:"size"`
				IsDir bool   `json:"is_dir"`
			} `json:"entries"`
		}
		require.NoError(t, json.Unmarshal(body, &listing))
		require.Len(t, listing.Entries, 1)
		require.Equal(t, "a.txt", listing.Entries[0].Name)
		require.Equal(t, int64(11), listing.Entries[0].Size)
		require.False(t, listing.Entries[0].IsDir)

		resp, body = c.call(http.MethodPost, "/v1/threads/files/files/move", map[string]string{"from": "dir/sub/a.txt", "to": "dir/b.txt"})
		require.Equal(t, 200, resp.StatusCode, string(body))
		resp, body = c.raw(http.MethodGet, "/v1/threads/files/files?path=dir/sub/a.txt", "", nil)
		requireErr(t, resp, body, http.StatusNotFound, "file_not_found")

		ct, mp := multipartBody(t, "up/one.txt", "one", "../../etc/evil", "x", "/home/daytona/volume/two.txt", "two")
		resp, body = c.raw(http.MethodPost, "/v1/threads/files/files/upload", ct, mp)
		require.Equal(t, 200, resp.StatusCode, string(body))
		var up struct {
			Files []struct {
				Path  string `json:"path"`
				Code  string `json:"code"`
				Error string `json:"error"`
			} `json:"files"`
		}
		require.NoError(t, json.Unmarshal(body, &up))
		require.Len(t, up.Files, 3)
		require.Equal(t, "/home/daytona/up/one.txt", up.Files[0].Path)
		require.Empty(t, up.Files[0].Error)
		require.NotEmpty(t, up.Files[1].Error)
		require.Equal(t, "invalid_path", up.Files[1].Code, "a failed file carries a code clients can branch on")
		require.Empty(t, up.Files[2].Error)
		require.Empty(t, up.Files[2].Code)

		resp, body = c.call(http.MethodPost, "/v1/threads/files/files/download", map[string]any{"paths": []string{"up/one.txt", "/home/daytona/volume/two.txt", "nope.txt", "../../x", "dir"}})
		require.Equal(t, 200, resp.StatusCode, string(body))
		var down struct {
			Files []struct {
				Path    string `json:"path"`
				Content []byte `json:"content"`
				Code    string `json:"code"`
				Error   string `json:"error"`
			} `json:"files"`
		}
		require.NoError(t, json.Unmarshal(body, &down))
		require.Len(t, down.Files, 5)
		require.Equal(t, "one", string(down.Files[0].Content))
		require.Equal(t, "two", string(down.Files[1].Content))
		for i, code := range []string{"file_not_found", "invalid_path", "is_a_directory"} {
			f := down.Files[2+i]
			require.NotEmpty(t, f.Error, f.Path)
			require.Equal(t, code, f.Code, f.Path)
			require.Empty(t, f.Content)
		}

		resp, body = c.raw(http.MethodDelete, "/v1/threads/files/files?path=dir", "", nil)
		requireErr(t, resp, body, http.StatusConflict, "is_a_directory")
		resp, body = c.raw(http.MethodPut, "/v1/threads/files/files?path=dir", "application/octet-stream", strings.NewReader("x"))
		requireErr(t, resp, body, http.StatusConflict, "is_a_directory")
		resp, body = c.raw(http.MethodDelete, "/v1/threads/files/files?path=dir&recursive=true", "", nil)
		require.Equal(t, http.StatusNoContent, resp.StatusCode, string(body))
		resp, body = c.raw(http.MethodGet, "/v1/threads/files/files?path=dir", "", nil)
		requireErr(t, resp, body, http.StatusNotFound, "file_not_found")

		r := c.exec("files", "head -c 5000 /dev/zero | tr '\\0' a")
		require.Equal(t, 0, r.ExitCode)
		require.True(t, r.Truncated)
		require.Len(t, r.Output, 1000)
		// The cut never splits a UTF-8 sequence: "a" + 499 two-byte "é" fit in 1000 bytes.
		r = c.exec("files", "printf a; for i in $(seq 600); do printf '\303\251'; done")
		require.True(t, r.Truncated)
		require.Len(t, r.Output, 999)
		require.True(t, utf8.ValidString(r.Output))
		r = c.exec("files", "pwd")
		require.Equal(t, "/home/daytona\n", r.Output)
		resp, body = c.call(http.MethodPost, "/v1/threads/files/exec", map[string]any{"command": "pwd; echo $FOO", "cwd": "up", "env": map[string]string{"FOO": "bar"}})
		require.Equal(t, 200, resp.StatusCode, string(body))
		require.NoError(t, json.Unmarshal(body, &r))
		require.Equal(t, "/home/daytona/up\nbar\n", r.Output)
		resp, body = c.call(http.MethodPost, "/v1/threads/files/exec", map[string]any{"command": "sleep 5; echo late", "timeout_s": 1})
		require.Equal(t, 200, resp.StatusCode, string(body))
		require.NoError(t, json.Unmarshal(body, &r))
		require.Equal(t, 124, r.ExitCode)
		require.True(t, r.TimedOut)
	})

	// Canaries that every refused request below must leave alone: in the
	// home, and in the user's volume (shared by all their threads).
	require.Equal(t, 0, c.exec("files", "echo canary > /home/daytona/canary && mkdir -p /home/daytona/volume && echo kept > /home/daytona/volume/keep.txt").ExitCode)

	t.Run("bad input", func(t *testing.T) {
		c := newTC(t, env, env.UserKey)
		long := strings.Repeat("a", 256)
		deep := strings.Repeat("/abc", 1100)
		cases := []struct {
			name, method, path, ct, body string
			status                       int
			code                         string
		}{
			{"unknown thread get", "GET", "/v1/threads/nope", "", "", 404, "not_found"},
			{"unknown thread exec", "POST", "/v1/threads/nope/exec", "application/json", `{"command":"true"}`, 404, "not_found"},
			{"unknown thread files", "GET", "/v1/threads/nope/files?path=a", "", "", 404, "not_found"},
			{"unknown thread delete", "DELETE", "/v1/threads/nope", "", "", 404, "not_found"},
			{"unknown thread lease", "POST", "/v1/threads/nope/leases", "application/json", `{"ttl_s":5}`, 404, "not_found"},
			{"malformed thread id", "GET", "/v1/threads/bad%20id", "", "", 404, "not_found"},
			{"create bad id", "POST", "/v1/threads", "application/json", `{"thread_id":"../x"}`, 400, "invalid_thread_id"},
			{"create long id", "POST", "/v1/threads", "application/json", `{"thread_id":"` + strings.Repeat("x", 65) + `"}`, 400, "invalid_thread_id"},
			{"create empty id", "POST", "/v1/threads", "application/json", `{"thread_id":""}`, 400, "invalid_thread_id"},
			{"create malformed", "POST", "/v1/threads", "application/json", `{"thread_id":`, 400, "malformed_json"},
			{"create wrong type", "POST", "/v1/threads", "text/plain", `{"thread_id":"x"}`, 415, "unsupported_media_type"},
			{"list bad flag", "GET", "/v1/threads?include_deleted=maybe", "", "", 400, "invalid_parameter"},
			{"missing command", "POST", "/v1/threads/files/exec", "application/json", `{}`, 400, "missing_command"},
			{"blank command", "POST", "/v1/threads/files/exec", "application/json", `{"command":"  \n"}`, 400, "missing_command"},
			{"negative timeout", "POST", "/v1/threads/files/exec", "application/json", `{"command":"true","timeout_s":-1}`, 400, "invalid_timeout"},
			{"zero timeout", "POST", "/v1/threads/files/exec", "application/json", `{"command":"true","timeout_s":0}`, 400, "invalid_timeout"},
			{"huge timeout", "POST", "/v1/threads/files/exec", "application/json", `{"command":"true","timeout_s":601}`, 400, "invalid_timeout"},
			{"absurd timeout", "POST", "/v1/threads/files/exec", "application/json", `{"command":"true","timeout_s":1e300}`, 400, "malformed_json"},
			{"bad env name", "POST", "/v1/threads/files/exec", "application/json", `{"command":"true","env":{"A-B":"x"}}`, 400, "invalid_env"},
			{"bad cwd", "POST", "/v1/threads/files/exec", "application/json", `{"command":"true","cwd":"../../.."}`, 400, "invalid_cwd"},
			{"exec malformed", "POST", "/v1/threads/files/exec", "application/json", `{"command":"true"`, 400, "malformed_json"},
			{"exec wrong type", "POST", "/v1/threads/files/exec", "text/plain", `{"command":"true"}`, 415, "unsupported_media_type"},
			{"exec huge body", "POST", "/v1/threads/files/exec", "application/json", `{"command":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "too_large"},
			{"traversal get", "GET", "/v1/threads/files/files?path=../../etc/passwd", "", "", 400, "invalid_path"},
			{"traversal put", "PUT", "/v1/threads/files/files?path=../../home/daytona/canary", "text/plain", "x", 400, "invalid_path"},
			{"traversal delete", "DELETE", "/v1/threads/files/files?path=../daytona/canary", "", "", 400, "invalid_path"},
			{"nul path", "GET", "/v1/threads/files/files?path=a%00b", "", "", 400, "invalid_path"},
			{"long component", "PUT", "/v1/threads/files/files?path=" + long, "text/plain", "x", 400, "invalid_path"},
			{"long path", "GET", "/v1/threads/files/files?path=" + deep, "", "", 400, "invalid_path"},
			{"missing path", "GET", "/v1/threads/files/files", "", "", 400, "invalid_path"},
			// The volume mount, its ancestors and the home: on Daytona a
			// recursive delete runs inside the sandbox, where the whole
			// volume is mounted.
			{"delete home", "DELETE", "/v1/threads/files/files?path=/home/daytona&recursive=true", "", "", 400, "invalid_path"},
			{"delete /home", "DELETE", "/v1/threads/files/files?path=/home&recursive=true", "", "", 400, "invalid_path"},
			{"delete /", "DELETE", "/v1/threads/files/files?path=/&recursive=true", "", "", 400, "invalid_path"},
			{"delete /home/", "DELETE", "/v1/threads/files/files?path=/home/&recursive=true", "", "", 400, "invalid_path"},
			{"delete home relative", "DELETE", "/v1/threads/files/files?path=.&recursive=true", "", "", 400, "invalid_path"},
			{"delete volume", "DELETE", "/v1/threads/files/files?path=/home/daytona/volume&recursive=true", "", "", 400, "invalid_path"},
			{"delete volume relative", "DELETE", "/v1/threads/files/files?path=volume/&recursive=true", "", "", 400, "invalid_path"},
			{"delete volume dotted", "DELETE", "/v1/threads/files/files?path=/home/./daytona//volume&recursive=true", "", "", 400, "invalid_path"},
			{"move /home away", "POST", "/v1/threads/files/files/move", "application/json", `{"from":"/home","to":"/tmp/h"}`, 400, "invalid_path"},
			{"move / away", "POST", "/v1/threads/files/files/move", "application/json", `{"from":"/","to":"/tmp/r"}`, 400, "invalid_path"},
			{"move home away", "POST", "/v1/threads/files/files/move", "application/json", `{"from":"/home/daytona","to":"/tmp/d"}`, 400, "invalid_path"},
			{"move volume away", "POST", "/v1/threads/files/files/move", "application/json", `{"from":"volume","to":"/tmp/v"}`, 400, "invalid_path"},
			{"move onto volume", "POST", "/v1/threads/files/files/move", "application/json", `{"from":"canary","to":"/home/daytona/volume"}`, 400, "invalid_path"},
			{"move onto /home", "POST", "/v1/threads/files/files/move", "application/json", `{"from":"canary","to":"/home"}`, 400, "invalid_path"},
			{"put onto /", "PUT", "/v1/threads/files/files?path=/", "text/plain", "x", 400, "invalid_path"},
			{"put onto /home", "PUT", "/v1/threads/files/files?path=/home", "text/plain", "x", 400, "invalid_path"},
			{"put onto home", "PUT", "/v1/threads/files/files?path=/home/daytona", "text/plain", "x", 400, "invalid_path"},
			{"put onto volume", "PUT", "/v1/threads/files/files?path=/home/daytona/volume", "text/plain", "x", 400, "invalid_path"},
			{"put reserved name", "PUT", "/v1/threads/files/files?path=volume/.tbpart-x", "text/plain", "x", 400, "invalid_path"},
			{"bad recursive", "DELETE", "/v1/threads/files/files?path=x&recursive=yes", "", "", 400, "invalid_parameter"},
			{"move traversal", "POST", "/v1/threads/files/files/move", "application/json", `{"from":"canary","to":"../../../tmp/x"}`, 400, "invalid_path"},
			{"move missing", "POST", "/v1/threads/files/files/move", "application/json", `{"from":"canary"}`, 400, "invalid_path"},
			{"put too large", "PUT", "/v1/threads/files/files?path=big", "application/octet-stream", strings.Repeat("x", 1<<16+1), 413, "too_large"},
			{"upload not multipart", "POST", "/v1/threads/files/files/upload", "application/json", `{}`, 415, "unsupported_media_type"},
			{"download none", "POST", "/v1/threads/files/files/download", "application/json", `{"paths":[]}`, 400, "missing_paths"},
			{"download malformed", "POST", "/v1/threads/files/files/download", "application/json", `{"paths":"x"}`, 400, "malformed_json"},
			{"lease no ttl", "POST", "/v1/threads/files/leases", "application/json", `{}`, 400, "invalid_ttl"},
			{"lease negative ttl", "POST", "/v1/threads/files/leases", "application/json", `{"ttl_s":-5}`, 400, "invalid_ttl"},
			{"lease huge ttl", "POST", "/v1/threads/files/leases", "application/json", `{"ttl_s":86401}`, 400, "invalid_ttl"},
			{"lease wrong type", "POST", "/v1/threads/files/leases", "text/plain", `{"ttl_s":5}`, 415, "unsupported_media_type"},
			{"unknown lease", "DELETE", "/v1/threads/files/leases/lease-00000000-0000-0000-0000-000000000000", "", "", 404, "not_found"},
			{"malformed lease", "DELETE", "/v1/threads/files/leases/whatever", "", "", 404, "not_found"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := c.raw(tc.method, tc.path, tc.ct, stringsReader(tc.body))
				requireErr(t, resp, body, tc.status, tc.code)
			})
		}

		// A chunked upload over the cap is cut off with 413 as well.
		pr := &slowReader{n: 1<<16 + 100}
		resp, body := c.raw(http.MethodPut, "/v1/threads/files/files?path=chunked", "application/octet-stream", pr)
		requireErr(t, resp, body, http.StatusRequestEntityTooLarge, "too_large")
		require.Equal(t, 0, c.exec("files", "mkdir -p /tmp/abs && echo abs > /tmp/abs/f").ExitCode)
		resp, body = c.raw(http.MethodGet, "/v1/threads/files/files?path=/tmp/abs/f", "", nil)
		require.Equal(t, 200, resp.StatusCode, "an absolute path names the thread's own sandbox: %s", body)
		require.Equal(t, "abs\n", string(body))
	})

	// A batch upload names the same paths per entry: refused there too.
	ct, mp := multipartBody(t, "/home", "x", "/home/daytona/volume", "x", "/", "x")
	resp, body := c.raw(http.MethodPost, "/v1/threads/files/files/upload", ct, mp)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var up struct {
		Files []struct{ Path, Error string } `json:"files"`
	}
	require.NoError(t, json.Unmarshal(body, &up))
	require.Len(t, up.Files, 3)
	for _, f := range up.Files {
		require.NotEmpty(t, f.Error, f.Path)
	}

	r := c.exec("files", "cat /home/daytona/canary /home/daytona/volume/keep.txt; ls /home/daytona; test -d /home/daytona/volume && echo volume-dir")
	require.Equal(t, 0, r.ExitCode)
	require.True(t, strings.HasPrefix(r.Output, "canary\nkept\n"), r.Output)
	require.Contains(t, r.Output, "volume-dir")
	require.NotContains(t, r.Output, "big")
}

// slowReader is a body of n bytes without a Content-Length (chunked).
type slowReader struct{ n int }

func (r *slowReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n, 4096)
	for i := range k {
		p[i] = 'z'
	}
	r.n -= k
	return k, nil
}
