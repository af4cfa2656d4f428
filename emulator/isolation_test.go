package emulator

import (
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
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
	"golang.org/x/sys/unix"
)

// upload writes content to a sandbox path through the generated client.
func (e *env) upload(sb *apiclient.Sandbox, p, content string) {
	e.t.Helper()
	f, err := os.CreateTemp(e.t.TempDir(), "up")
	require.NoError(e.t, err)
	_, _ = f.WriteString(content)
	_, _ = f.Seek(0, io.SeekStart)
	defer f.Close()
	_, _, err = e.tb(sb).FileSystemAPI.UploadFile(e.ctx).Path(p).File(f).Execute()
	require.NoError(e.t, err)
}

// download reads a sandbox file; it returns the status on failure.
func (e *env) download(sb *apiclient.Sandbox, p string) (string, int) {
	e.t.Helper()
	code, body, _ := e.raw(http.MethodGet, "/toolbox/"+sb.Id+"/files/download?path="+q(p), nil, nil)
	return string(body), code
}

func TestIsolationFilesAndVolumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.newVolume("shared")
	mk := func(sub string) *apiclient.Sandbox {
		return e.create(apiclient.CreateSandbox{Volumes: []apiclient.SandboxVolume{
			{VolumeId: "shared", MountPath: "/home/daytona/volume"},
			{VolumeId: "shared", MountPath: "/home/daytona/mine", Subpath: apiclient.PtrString("users/" + sub)},
		}})
	}
	a, b := mk("a"), mk("b")

	// Private files are private.
	e.upload(a, "/home/daytona/secret.txt", "a-secret")
	_, code := e.download(b, "/home/daytona/secret.txt")
	assert.Equal(t, http.StatusNotFound, code)

	// The shared volume is shared, both ways, and outlives a sandbox.
	e.upload(a, "/home/daytona/volume/common.txt", "from-a")
	got, code := e.download(b, "/home/daytona/volume/common.txt")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "from-a", got)

	// Subpath isolation: a's subpath is visible under /volume/users/a, not in b's subpath.
	e.upload(a, "/home/daytona/mine/only-a.txt", "sub-a")
	_, code = e.download(b, "/home/daytona/mine/only-a.txt")
	assert.Equal(t, http.StatusNotFound, code)
	got, code = e.download(b, "/home/daytona/volume/users/a/only-a.txt")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "sub-a", got)
	list, _, err := e.tb(b).FileSystemAPI.ListFiles(e.ctx).Path("/home/daytona/volume/users").Execute()
	require.NoError(t, err)
	names := []string{}
	for _, fi := range list {
		names = append(names, fi.Name)
	}
	assert.ElementsMatch(t, []string{"a", "b"}, names, "subpaths are created on mount")

	// ../ and absolute paths stay inside the sandbox: /etc/passwd is the sandbox's own.
	_, code = e.download(a, "/etc/passwd")
	assert.Equal(t, http.StatusNotFound, code, "the sandbox's /etc is empty, not the host's")
	e.upload(a, "../../../../../../etc/escape.txt", "inside")
	_, err = os.Stat(filepath.Join(e.srv.sandboxRoot(a.Id), "etc", "escape.txt"))
	assert.NoError(t, err, ".. is clamped at the sandbox root")
	_, err = os.Stat("/etc/escape.txt")
	assert.True(t, os.IsNotExist(err), "the host's /etc is untouched")
	got, code = e.download(a, "/home/daytona/../../etc/escape.txt")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "inside", got)

	// A symlink pointing out (created on the host side, as a command could)
	// is resolved inside the sandbox, never followed out to the host.
	hostSecret := filepath.Join(t.TempDir(), "host-secret")
	require.NoError(t, os.WriteFile(hostSecret, []byte("HOST"), 0o600))
	aHome := filepath.Join(e.srv.sandboxRoot(a.Id), "home", "daytona")
	require.NoError(t, os.Symlink(hostSecret, filepath.Join(aHome, "abs-link")))
	require.NoError(t, os.Symlink("../../../../../../../../"+hostSecret, filepath.Join(aHome, "rel-link")))
	bRoot := e.srv.sandboxRoot(b.Id)
	require.NoError(t, os.Symlink(filepath.Join(bRoot, "home", "daytona"), filepath.Join(aHome, "to-b")))
	for _, p := range []string{"/home/daytona/abs-link", "/home/daytona/rel-link"} {
		body, code := e.download(a, p)
		assert.NotEqual(t, "HOST", body, p)
		assert.Equal(t, http.StatusNotFound, code, p)
	}
	_, code = e.download(a, "/home/daytona/to-b/secret.txt")
	assert.Equal(t, http.StatusNotFound, code)
	// Writing through the link also stays inside a's tree.
	e.upload(a, "/home/daytona/abs-link", "written")
	hb, _ := os.ReadFile(hostSecret)
	assert.Equal(t, "HOST", string(hb), "host file unchanged")
	_, err = os.Stat(filepath.Join(e.srv.sandboxRoot(a.Id), hostSecret))
	assert.NoError(t, err, "the link target was created inside the sandbox root")
	// A link inside a pointing to its own absolute path works (namespace semantics).
	require.NoError(t, os.Symlink("/home/daytona/secret.txt", filepath.Join(aHome, "ok-link")))
	got, code = e.download(a, "/home/daytona/ok-link")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "a-secret", got)
	// Deleting a link removes the link, not its target.
	_, err = e.tb(a).FileSystemAPI.DeleteFile(e.ctx).Path("/home/daytona/ok-link").Execute()
	require.NoError(t, err)
	got, code = e.download(a, "/home/daytona/secret.txt")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "a-secret", got)

	// NUL bytes are refused.
	code, _, _ = e.raw(http.MethodGet, "/toolbox/"+a.Id+"/files/info?path=%2Fhome%00x", nil, nil)
	assert.Equal(t, http.StatusBadRequest, code)

	// Deleting "/" empties the root but never removes the sandbox directory itself.
	_, err = e.tb(b).FileSystemAPI.DeleteFile(e.ctx).Path("/home/daytona/mine").Recursive(true).Execute()
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(e.srv.volumeDir(mustVolID(t, e, "shared")), "users", "b"))
	assert.NoError(t, err, "mount point directory kept")

	// Volumes outlive sandboxes; a deleted sandbox loses its files; a stopped one keeps them.
	_, _, err = e.api.SandboxAPI.StopSandbox(e.ctx, b.Id).Execute()
	require.NoError(t, err)
	e.waitState(b.Id, apiclient.SANDBOXSTATE_STOPPED)
	_, _, err = e.api.SandboxAPI.StartSandbox(e.ctx, b.Id).Execute()
	require.NoError(t, err)
	_, _, err = e.api.SandboxAPI.DeleteSandbox(e.ctx, a.Id).Execute()
	require.NoError(t, err)
	e.waitState(a.Id, "")
	_, err = os.Stat(e.srv.sandboxRoot(a.Id))
	assert.True(t, os.IsNotExist(err), "deleted sandbox's files are gone")
	got, code = e.download(b, "/home/daytona/volume/common.txt")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "from-a", got)
}

func mustVolID(t *testing.T, e *env, name string) string {
	v, _, err := e.api.VolumesAPI.GetVolumeByName(e.ctx, name).Execute()
	require.NoError(t, err)
	return v.Id
}

func TestIsolationCommandsBwrap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	require.True(t, e.srv.IsolationActive(), "New requires bubblewrap unless UnsafeHostExec")
	e.newVolume("cmdvol")
	mk := func() *apiclient.Sandbox {
		return e.create(apiclient.CreateSandbox{Volumes: []apiclient.SandboxVolume{{VolumeId: "cmdvol", MountPath: "/home/daytona/volume"}}})
	}
	a, b := mk(), mk()
	e.upload(b, "/home/daytona/b-secret.txt", "b-only")
	bHostPath := filepath.Join(e.srv.sandboxRoot(b.Id), "home", "daytona", "b-secret.txt")
	require.FileExists(t, bHostPath)

	// Another sandbox's root (by host path) is invisible.
	res := e.exec(a, "cat "+bHostPath)
	assert.NotEqual(t, int32(0), res.GetExitCode(), res.Result)
	assert.NotContains(t, res.Result, "b-only")
	res = e.exec(a, "ls "+e.srv.baseDir)
	assert.NotEqual(t, int32(0), res.GetExitCode(), "the state dir is not visible: %s", res.Result)

	// A command cannot write outside its tree: system dirs are read-only,
	// and what it writes to /tmp lands in its own root.
	res = e.exec(a, "echo x > /usr/evil")
	assert.NotEqual(t, int32(0), res.GetExitCode())
	res = e.exec(a, "echo x > /etc/evil")
	assert.NotEqual(t, int32(0), res.GetExitCode())
	res = e.exec(a, "echo mine > /tmp/t && cat /tmp/t")
	require.Equal(t, int32(0), res.GetExitCode(), res.Result)
	assert.FileExists(t, filepath.Join(e.srv.sandboxRoot(a.Id), "tmp", "t"))
	got, code := e.download(a, "/tmp/t")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "mine\n", got, "file API and commands share the root")

	// The volume is visible to both at its mount path.
	res = e.exec(a, "echo shared-data > /home/daytona/volume/v.txt")
	require.Equal(t, int32(0), res.GetExitCode(), res.Result)
	res = e.exec(b, "cat /home/daytona/volume/v.txt")
	assert.Equal(t, "shared-data\n", res.Result)

	// Own PID namespace: the host's processes are not visible.
	res = e.exec(a, "ls /proc | grep -c '^[0-9]'")
	assert.Equal(t, int32(0), res.GetExitCode())
	assert.LessOrEqual(t, len(strings.TrimSpace(res.Result)), 2, "only a few pids: %s", res.Result)

	// A symlink created by a command that points at b's host path stays inside a.
	res = e.exec(a, "ln -s "+bHostPath+" /home/daytona/link-to-b")
	require.Equal(t, int32(0), res.GetExitCode(), res.Result)
	_, code = e.download(a, "/home/daytona/link-to-b")
	assert.Equal(t, http.StatusNotFound, code)

	// Writes through the toolbox are visible to commands.
	e.upload(a, "/home/daytona/up.txt", "uploaded")
	r, _, err := e.tb(a).ProcessAPI.ExecuteCommand(e.ctx).Request(toolbox.ExecuteRequest{Command: "cat $HOME/../daytona/up.txt"}).Execute()
	require.NoError(t, err)
	assert.Equal(t, "uploaded", r.Result)
}

func TestUnsafeHostExec(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	e := newEnv(t, Options{UnsafeHostExec: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	assert.False(t, e.srv.IsolationActive())
	assert.Contains(t, logs.String(), "WITHOUT isolation")
	sb := e.create(apiclient.CreateSandbox{})
	_, err := e.tb(sb).FileSystemAPI.CreateFolder(e.ctx).Path("/home/daytona/w").Mode("0755").Execute()
	require.NoError(t, err)
	r, _, err := e.tb(sb).ProcessAPI.ExecuteCommand(e.ctx).Request(toolbox.ExecuteRequest{Command: "pwd; echo $HOME", Cwd: toolbox.PtrString("w")}).Execute()
	require.NoError(t, err)
	root, err := filepath.EvalSymlinks(e.srv.sandboxRoot(sb.Id))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "home/daytona/w")+"\n"+filepath.Join(root, "home/daytona")+"\n", r.Result,
		"cwd and HOME are mapped into the sandbox directory")
	assert.Equal(t, 1, strings.Count(logs.String(), "WITHOUT isolation"), "warned once")

	// Sessions work there too, and stopping the sandbox kills their commands.
	p := e.tbSDK(sb).ProcessAPI
	_, err = p.CreateSession(e.ctx).Request(toolbox.CreateSessionRequest{SessionId: "h"}).Execute()
	require.NoError(t, err)
	res, _, err := p.SessionExecuteCommand(e.ctx, "h").Request(toolbox.SessionExecuteRequest{Command: "cd w && pwd"}).Execute()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "home/daytona/w")+"\n", res.GetStdout())
	_, _, err = p.SessionExecuteCommand(e.ctx, "h").Request(toolbox.SessionExecuteRequest{Command: "sleep 3031", RunAsync: toolbox.PtrBool(true)}).Execute()
	require.NoError(t, err)
	require.Eventually(t, func() bool { return hostHasProcess(t, "sleep 3031") }, 30*time.Second, 20*time.Millisecond)
	_, _, err = e.api.SandboxAPI.StopSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return !hostHasProcess(t, "sleep 3031") }, 30*time.Second, 20*time.Millisecond)
}

// The first commands on a fresh sandbox may run concurrently; the namespace
// setup must not race on the root's /bin, /lib... links.
func TestIsolationConcurrentFirstCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{})
	const n = 8
	results := make(chan toolbox.ExecuteResponse, n)
	for i := range n {
		go func() {
			res, _, err := e.tb(sb).ProcessAPI.ExecuteCommand(e.ctx).Request(toolbox.ExecuteRequest{Command: fmt.Sprintf("echo run-%d", i)}).Execute()
			if err != nil {
				results <- toolbox.ExecuteResponse{Result: err.Error(), ExitCode: toolbox.PtrInt32(-99)}
				return
			}
			results <- *res
		}()
	}
	for range n {
		res := <-results
		require.Equal(t, int32(0), res.GetExitCode(), res.Result)
		require.Contains(t, res.Result, "run-")
	}
}

// Commands run as the unprivileged daytona user (uid 1000, HOME
// /home/daytona), like in a Daytona sandbox: what only root may do fails,
// while the home, /tmp and the volume stay writable.
func TestIsolationUnprivilegedUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.newVolume("uservol")
	sb := e.create(apiclient.CreateSandbox{Volumes: []apiclient.SandboxVolume{{VolumeId: "uservol", MountPath: "/home/daytona/volume"}}})
	e.upload(sb, "/home/daytona/uploaded.txt", "up")

	res := e.exec(sb, "id -un; id -u; id -g; echo $HOME $USER; pwd")
	require.Equal(t, int32(0), res.GetExitCode(), res.Result)
	assert.Equal(t, "daytona\n1000\n1000\n/home/daytona daytona\n/home/daytona\n", res.Result)

	for _, cmd := range []string{
		"echo x > /root-only.txt",                      // "/" is not the user's
		"mkdir /opt2",                                  // nor can it create directories there
		"chmod 777 /",                                  // nor change its mode
		"chown 0:0 /home/daytona/uploaded.txt",         // no CAP_CHOWN
		"cat /etc/shadow | grep -q root",               // the host's secrets are hidden
		"echo x >> /etc/hosts",                         // system files are read-only
		"mkdir -p ~/mnt && mount -t tmpfs tmpfs ~/mnt", // no CAP_SYS_ADMIN
	} {
		res := e.exec(sb, cmd)
		assert.NotEqual(t, int32(0), res.GetExitCode(), "as daytona, %q must fail: %s", cmd, res.Result)
	}
	res = e.exec(sb, "echo h > ~/h.txt && echo t > /tmp/t.txt && echo v > ~/volume/v.txt && echo more >> ~/uploaded.txt && mkdir -p ~/a/b && cat ~/h.txt /tmp/t.txt ~/volume/v.txt")
	require.Equal(t, int32(0), res.GetExitCode(), res.Result)
	assert.Equal(t, "h\nt\nv\n", res.Result)
	got, code := e.download(sb, "/home/daytona/uploaded.txt")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "upmore\n", got, "a file uploaded through the toolbox belongs to the user")
}

// Each sandbox has its own network namespace: services listening on the
// host's loopback (the emulator itself, PostgreSQL, Temporal...) are out of
// reach, and there is no outbound network at all.
func TestIsolationNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{})
	emuPort := e.hs.Listener.Addr().(*net.TCPAddr).Port
	for _, port := range []int{emuPort, 5432} {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
		require.NoError(t, err, "the host reaches 127.0.0.1:%d (PostgreSQL must run for this test)", port)
		c.Close()
		res := e.exec(sb, fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d && echo CONNECTED", port))
		assert.NotEqual(t, int32(0), res.GetExitCode(), "port %d: %s", port, res.Result)
		assert.NotContains(t, res.Result, "CONNECTED")
	}
	res := e.exec(sb, fmt.Sprintf("curl -sS -m 3 http://127.0.0.1:%d/api/sandbox", emuPort))
	assert.NotEqual(t, int32(0), res.GetExitCode(), res.Result)
	assert.NotContains(t, res.Result, sb.Id, "no sandbox list from inside a sandbox")
	res = e.exec(sb, "cat /proc/net/dev | grep -c :")
	assert.Equal(t, "1\n", res.Result, "only a loopback interface")
}

// The commands of one sandbox share its processes (one namespace, like one
// container); a stop kills all of them, background jobs included.
func TestIsolationSharedProcessesAndStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{})
	marker := fmt.Sprintf("%d", 3000+time.Now().UnixNano()%1000)
	res := e.exec(sb, "sleep "+marker+" >/dev/null 2>&1 & echo $! > /tmp/bg.pid")
	require.Equal(t, int32(0), res.GetExitCode(), res.Result)
	res = e.exec(sb, "kill -0 $(cat /tmp/bg.pid) && echo alive")
	assert.Equal(t, "alive\n", res.Result, "a later command sees the job of an earlier one")
	require.True(t, hostHasProcess(t, "sleep "+marker), "the job runs")

	_, _, err := e.api.SandboxAPI.StopSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STOPPED)
	assert.Eventually(t, func() bool { return !hostHasProcess(t, "sleep "+marker) }, 30*time.Second, 20*time.Millisecond,
		"stopping the sandbox killed its background job")
}

// hostHasProcess reports whether a process with exactly this command line runs on the host.
func hostHasProcess(t *testing.T, cmdline string) bool {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	want := strings.ReplaceAll(cmdline, " ", "\x00") + "\x00"
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err == nil && string(b) == want {
			return true
		}
	}
	return false
}

// A sandbox whose processes swap a directory for a symlink to a host
// directory, over and over, while the emulator works on paths under it,
// never makes the emulator read, list, write, move or delete a host file:
// every host-side operation resolves inside the sandbox's tree (os.Root).
func TestIsolationSymlinkSwapRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	sb := e.create(apiclient.CreateSandbox{})
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "f.txt"), []byte("HOST-SECRET"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(host, "victim.txt"), []byte("keep me"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(host, "host-only-name"), nil, 0o644))

	home := filepath.Join(e.srv.sandboxRoot(sb.Id), "home", "daytona")
	d, alt := filepath.Join(home, "d"), filepath.Join(home, "alt")
	require.NoError(t, os.MkdirAll(d, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(d, "f.txt"), []byte("inside"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(d, "victim.txt"), []byte("sandbox victim"), 0o644))
	homeRoot, err := os.OpenRoot(home)
	require.NoError(t, err)
	defer homeRoot.Close()
	// Two kinds of way out: an absolute link and a relative one climbing above the root.
	links := []string{host, strings.Repeat("../", 20) + strings.TrimPrefix(host, "/")}

	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		defer func() { swapped <- n }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = os.Remove(alt)
			if err := os.Symlink(links[i%2], alt); err != nil {
				continue
			}
			// Atomically exchange the real directory and the link, and back.
			if unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE) == nil {
				n++
				_ = unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE)
			}
		}
	}()

	base := "/toolbox/" + sb.Id
	do := func(method, path string, body io.Reader, ct string) (int, string) {
		req, err := http.NewRequest(method, e.hs.URL+base+path, body)
		require.NoError(t, err)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := e.hs.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	upload := func(p string) {
		var buf strings.Builder
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", "x")
		_, _ = fw.Write([]byte("WRITTEN-BY-SANDBOX"))
		_ = mw.Close()
		do(http.MethodPost, "/files/upload?path="+q(p), strings.NewReader(buf.String()), mw.FormDataContentType())
	}
	const rounds = 300
	for i := range rounds {
		_, body := do(http.MethodGet, "/files/download?path="+q("/home/daytona/d/f.txt"), nil, "")
		require.NotContains(t, body, "HOST-SECRET", "round %d: a host file was read", i)
		_, body = do(http.MethodGet, "/files?path="+q("/home/daytona/d"), nil, "")
		require.NotContains(t, body, "host-only-name", "round %d: a host directory was listed", i)
		_, body = do(http.MethodGet, "/files/find?path="+q("/home/daytona/d")+"&pattern=SECRET", nil, "")
		require.NotContains(t, body, "HOST-SECRET", "round %d: a host file was searched", i)
		upload(fmt.Sprintf("/home/daytona/d/up-%d.txt", i))
		do(http.MethodPost, "/files/folder?path="+q(fmt.Sprintf("/home/daytona/d/dir-%d", i))+"&mode=0755", nil, "")
		do(http.MethodDelete, "/files?path="+q("/home/daytona/d/victim.txt"), nil, "")
		do(http.MethodPost, "/files/move?source="+q("/home/daytona/d/victim.txt")+"&destination="+q(fmt.Sprintf("/home/daytona/stolen-%d", i)), nil, "")
		if i%50 == 0 {
			// Put the sandbox's own victim back so deletes keep having something to
			// aim at. Through the home's os.Root, like the emulator: a plain write to
			// d/victim.txt follows d when the swapper has just made it the link, and
			// the test itself would overwrite the host's victim.
			_ = homeRoot.WriteFile("d/victim.txt", []byte("sandbox victim"), 0o644)
		}
	}
	close(stop)
	require.Positive(t, <-swapped, "the swapper ran")

	entries, err := os.ReadDir(host)
	require.NoError(t, err)
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	assert.ElementsMatch(t, []string{"f.txt", "victim.txt", "host-only-name"}, names, "nothing written into the host directory")
	b, err := os.ReadFile(filepath.Join(host, "victim.txt"))
	require.NoError(t, err)
	assert.Equal(t, "keep me", string(b))
	b, err = os.ReadFile(filepath.Join(host, "f.txt"))
	require.NoError(t, err)
	assert.Equal(t, "HOST-SECRET", string(b))
}

// Without bubblewrap the emulator refuses to start, naming the fix, unless
// the unsafe host execution is asked for by name. (Not parallel: it
// changes PATH for the whole process.)
func TestNewRequiresBwrap(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := New(t.Context(), Options{Logger: quietLogger()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "apt-get install -y bubblewrap")
	assert.Contains(t, err.Error(), "EMULATOR_UNSAFE_HOST_EXEC=1")

	s, err := New(t.Context(), Options{Logger: quietLogger(), UnsafeHostExec: true})
	require.NoError(t, err)
	assert.False(t, s.IsolationActive())
	require.NoError(t, s.Close())

	for v, want := range map[string]bool{"": false, "0": false, "1": true, "true": true} {
		got, err := UnsafeHostExecFromEnv(func(string) string { return v })
		require.NoError(t, err)
		assert.Equal(t, want, got, v)
	}
	_, err = UnsafeHostExecFromEnv(func(string) string { return "yes please" })
	assert.Error(t, err)
}
