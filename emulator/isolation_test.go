package emulator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
	toolbox "github.com/daytonaio/daytona/libs/toolbox-api-client-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	if !e.srv.IsolationActive() {
		t.Skip("bubblewrap (bwrap) is not installed or cannot create namespaces here; CI installs it (apt-get install bubblewrap)")
	}
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
	// and what it writes to / lands in its own root.
	res = e.exec(a, "echo x > /usr/evil")
	assert.NotEqual(t, int32(0), res.GetExitCode())
	res = e.exec(a, "echo x > /etc/evil")
	assert.NotEqual(t, int32(0), res.GetExitCode())
	res = e.exec(a, "echo mine > /tmp/t && echo top > /top.txt && cat /tmp/t")
	require.Equal(t, int32(0), res.GetExitCode(), res.Result)
	assert.FileExists(t, filepath.Join(e.srv.sandboxRoot(a.Id), "tmp", "t"))
	assert.FileExists(t, filepath.Join(e.srv.sandboxRoot(a.Id), "top.txt"))
	_, err := os.Stat("/top.txt")
	assert.True(t, os.IsNotExist(err))
	got, code := e.download(a, "/top.txt")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "top\n", got, "file API and commands share the root")

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
	r, _, err := e.tb(a).ProcessAPI.ExecuteCommand(e.ctx).Request(toolbox.ExecuteRequest{Command: "cat $HOME/../../top.txt"}).Execute()
	require.NoError(t, err)
	assert.Equal(t, "top\n", r.Result)
}

func TestIsolationNoneFallback(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	e := newEnv(t, Options{Isolation: IsolationNone, Logger: slog.New(slog.NewTextHandler(logs, nil))})
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

	_, err = New(context.Background(), Options{Isolation: "bogus", Logger: quietLogger()})
	assert.Error(t, err)
}

// The first commands on a fresh sandbox may run concurrently; the namespace
// setup must not race on the root's /bin, /lib... links.
func TestIsolationConcurrentFirstCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	if !e.srv.IsolationActive() {
		t.Skip("bubblewrap (bwrap) is not installed or cannot create namespaces here; CI installs it (apt-get install bubblewrap)")
	}
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
