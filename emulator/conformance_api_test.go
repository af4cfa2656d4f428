package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests drive the emulator through the official generated API client;
// the validator checks every request and response against the OpenAPI document.

func TestConformanceSandboxLifecycle(t *testing.T) {
	t.Parallel()
	// Transitions take a second: the calls made while one is in progress (a
	// second stop, a delete during stopping) must land inside it, which a
	// loaded machine does not promise within the default 30ms.
	e := newEnv(t, Options{APIKey: "secret", TransitionDelay: time.Second})
	api := e.api.SandboxAPI

	sb := e.create(apiclient.CreateSandbox{
		Name:   apiclient.PtrString("life-1"),
		Labels: &map[string]string{"user": "u1", "code-toolbox-language": "python"},
		Env:    &map[string]string{"FOO": "bar"},
	})
	assert.Equal(t, "life-1", sb.Name)
	assert.Equal(t, e.hs.URL+"/toolbox", sb.ToolboxProxyUrl)
	assert.Equal(t, "bar", sb.Env["FOO"])
	assert.Equal(t, float32(15), sb.GetAutoStopInterval())
	assert.Equal(t, float32(-1), sb.GetAutoDeleteInterval())

	// Get by id and by name.
	got, _, err := api.GetSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, sb.Id, got.Id)
	got, _, err = api.GetSandbox(e.ctx, "life-1").Execute()
	require.NoError(t, err)
	assert.Equal(t, sb.Id, got.Id)

	// Unknown → 404 with Daytona's message.
	_, resp, err := api.GetSandbox(e.ctx, "nope").Execute()
	status, msg := apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "Sandbox with ID or name nope not found", msg)

	// Duplicate name → 409.
	_, resp, err = api.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{Name: apiclient.PtrString("life-1")}).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, msg, "already exists")

	// Resources with a snapshot → 400.
	_, resp, err = api.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{Cpu: apiclient.PtrInt32(2)}).Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	// Unknown snapshot → 400.
	_, resp, err = api.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{Snapshot: apiclient.PtrString("ghost:1.0")}).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, msg, "not found")

	// Start while started is a no-op.
	got, _, err = api.StartSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, got.GetState())

	// Stop: returns "stopping" at once; a second stop or a delete meanwhile → 409.
	got, _, err = api.StopSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_STOPPING, got.GetState())
	_, resp, err = api.StopSandbox(e.ctx, sb.Id).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "Sandbox state change in progress", msg)
	_, resp, err = api.DeleteSandbox(e.ctx, sb.Id).Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusConflict, status)
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STOPPED)

	// Stop when stopped → 400 wrong state.
	_, resp, err = api.StopSandbox(e.ctx, sb.Id).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "Sandbox is not in a stoppable state", msg)

	// Toolbox on a stopped sandbox → 400 like the runner.
	_, resp, err = e.tb(sb).InfoAPI.GetUserHomeDir(e.ctx).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, msg, "no IP address found. Is the Sandbox started?")

	// Start waits for started.
	got, _, err = api.StartSandbox(e.ctx, "life-1").Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, got.GetState())

	// Labels: PUT replaces all labels; the code returns the full Sandbox.
	lresp, _, err := api.ReplaceLabels(e.ctx, sb.Id).SandboxLabels(apiclient.SandboxLabels{Labels: map[string]string{"only": "this"}}).Execute()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"only": "this"}, lresp.Labels)
	code, body, _ := e.raw(http.MethodGet, "/api/sandbox/"+sb.Id, nil, map[string]string{"Authorization": "Bearer secret"})
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"labels":{"only":"this"}`)

	// Interval setters.
	got, resp, err = api.SetAutostopInterval(e.ctx, sb.Id, 7).Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, float32(7), got.GetAutoStopInterval())
	_, resp, err = api.SetAutostopInterval(e.ctx, sb.Id, -1).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "Auto-stop interval must be non-negative", msg)
	got, _, err = api.SetAutoArchiveInterval(e.ctx, sb.Id, 0).Execute()
	require.NoError(t, err)
	assert.Equal(t, float32(43200), got.GetAutoArchiveInterval(), "0 means the maximum")
	got, _, err = api.SetAutoDeleteInterval(e.ctx, sb.Id, 30).Execute()
	require.NoError(t, err)
	assert.Equal(t, float32(30), got.GetAutoDeleteInterval())

	// Keep-alive and toolbox proxy URL.
	resp, err = api.UpdateLastActivity(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	u, _, err := api.GetToolboxProxyUrl(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, e.hs.URL+"/toolbox", u.Url)
	_, resp, err = api.GetToolboxProxyUrl(e.ctx, "missing").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)

	// Delete: destroying, renamed (name freed at once), then 404.
	got, _, err = api.DeleteSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_DESTROYING, got.GetState())
	assert.True(t, strings.HasPrefix(got.Name, "DESTROYED_life-1_"), got.Name)
	_, resp, err = api.GetSandbox(e.ctx, "life-1").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status, "the name is freed at once")
	e.waitState(sb.Id, "")
	sb2 := e.create(apiclient.CreateSandbox{Name: apiclient.PtrString("life-1")})
	assert.NotEqual(t, sb.Id, sb2.Id)

	// Auth: a wrong key → 401 with the error body.
	code, body, _ = e.raw(http.MethodGet, "/api/sandbox/"+sb2.Id, nil, map[string]string{"Authorization": "Bearer wrong"})
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, string(body), `"statusCode":401`)
	code, _, _ = e.raw(http.MethodGet, "/toolbox/"+sb2.Id+"/work-dir", nil, nil)
	assert.Equal(t, http.StatusUnauthorized, code)

	// The allow-listed 201s really happened (so the allow-list is not stale).
	assert.Contains(t, e.val.mismatch, "setAutostopInterval 201")
}

func TestConformanceEphemeralAndArchive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	api := e.api.SandboxAPI
	sb := e.create(apiclient.CreateSandbox{AutoDeleteInterval: apiclient.PtrInt32(0)})
	got, _, err := api.StopSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_DESTROYING, got.GetState(), "ephemeral stop deletes")
	e.waitState(sb.Id, "")

	// Archive (stopped only), then start restores.
	sb = e.create(apiclient.CreateSandbox{})
	code, _, _ := e.raw(http.MethodPost, "/api/sandbox/"+sb.Id+"/archive", nil, nil)
	assert.Equal(t, http.StatusBadRequest, code, "archive needs stopped")
	_, _, err = api.StopSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STOPPED)
	code, _, _ = e.raw(http.MethodPost, "/api/sandbox/"+sb.Id+"/archive", nil, nil)
	assert.Equal(t, http.StatusOK, code)
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_ARCHIVED)
	got, _, err = api.StartSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_ARCHIVED, got.GetState(), "start from archived does not wait")
	assert.Equal(t, apiclient.SANDBOXDESIREDSTATE_STARTED, got.GetDesiredState())
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STARTED)
}

func TestConformanceListLabelsAndPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	api := e.api.SandboxAPI
	ids := map[string]bool{}
	for i := range 5 {
		labels := map[string]string{"user": "u1", "i": fmt.Sprint(i)}
		if i%2 == 1 {
			labels["user"] = "u2"
		}
		sb := e.create(apiclient.CreateSandbox{Name: apiclient.PtrString(fmt.Sprintf("list-%d", i)), Labels: &labels})
		ids[sb.Id] = true
	}
	filter, _ := json.Marshal(map[string]string{"user": "u1"})
	res, _, err := api.ListSandboxes(e.ctx).Labels(string(filter)).Execute()
	require.NoError(t, err)
	require.Len(t, res.Items, 3, "containment: only user=u1")
	for _, it := range res.Items {
		assert.Equal(t, "u1", it.Labels["user"])
	}
	assert.False(t, res.NextCursor.IsSet() && res.NextCursor.Get() != nil, "no more pages")
	filter, _ = json.Marshal(map[string]string{"user": "u1", "i": "2"})
	res, _, err = api.ListSandboxes(e.ctx).Labels(string(filter)).Execute()
	require.NoError(t, err)
	require.Len(t, res.Items, 1)
	assert.Equal(t, "list-2", res.Items[0].Name)

	_, resp, err := api.ListSandboxes(e.ctx).Labels("{not json").Execute()
	status, msg := apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "Invalid labels JSON format", msg)

	// Paging with limit 2: 3 pages, every sandbox exactly once.
	seen := map[string]int{}
	var cursor *string
	pages := 0
	for {
		req := api.ListSandboxes(e.ctx).Limit(2)
		if cursor != nil {
			req = req.Cursor(*cursor)
		}
		res, _, err := req.Execute()
		require.NoError(t, err)
		pages++
		for _, it := range res.Items {
			seen[it.Id]++
		}
		if res.NextCursor.Get() == nil {
			break
		}
		cursor = res.NextCursor.Get()
		require.Less(t, pages, 10)
	}
	assert.Equal(t, 3, pages)
	assert.Len(t, seen, 5)
	for id, n := range seen {
		assert.True(t, ids[id])
		assert.Equal(t, 1, n)
	}

	// states filter.
	stopID := ""
	for id := range ids {
		stopID = id
		break
	}
	_, _, err = api.StopSandbox(e.ctx, stopID).Execute()
	require.NoError(t, err)
	e.waitState(stopID, apiclient.SANDBOXSTATE_STOPPED)
	res, _, err = api.ListSandboxes(e.ctx).States([]apiclient.SandboxState{apiclient.SANDBOXSTATE_STOPPED}).Execute()
	require.NoError(t, err)
	require.Len(t, res.Items, 1)
	assert.Equal(t, stopID, res.Items[0].Id)
}

func TestConformanceVolumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{TransitionDelay: 200 * time.Millisecond})
	vapi := e.api.VolumesAPI

	v, _, err := vapi.CreateVolume(e.ctx).CreateVolume(apiclient.CreateVolume{Name: "vol-a"}).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.VOLUMESTATE_PENDING_CREATE, v.State)
	// Not ready yet → creating a sandbox with it is a 400.
	_, resp, err := e.api.SandboxAPI.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{
		Volumes: []apiclient.SandboxVolume{{VolumeId: "vol-a", MountPath: "/home/daytona/data"}},
	}).Execute()
	status, msg := apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, msg, "is not in a ready state")

	// Duplicate → 400 (not 409), as in Daytona.
	_, resp, err = vapi.CreateVolume(e.ctx).CreateVolume(apiclient.CreateVolume{Name: "vol-a"}).Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)

	require.Eventually(t, func() bool {
		got, _, err := vapi.GetVolume(e.ctx, v.Id).Execute()
		return err == nil && got.State == apiclient.VOLUMESTATE_READY
	}, 30*time.Second, 10*time.Millisecond)
	got, _, err := vapi.GetVolumeByName(e.ctx, "vol-a").Execute()
	require.NoError(t, err)
	assert.Equal(t, v.Id, got.Id)
	_, resp, err = vapi.GetVolumeByName(e.ctx, "vol-missing").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)
	_, resp, err = vapi.GetVolume(e.ctx, "00000000-0000-0000-0000-000000000000").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)

	// Invalid mount paths → 400; unknown volume → 404.
	for _, mp := range []string{"relative", "/", "/etc/x", "/a/../b", "/proc"} {
		_, resp, err = e.api.SandboxAPI.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{
			Volumes: []apiclient.SandboxVolume{{VolumeId: "vol-a", MountPath: mp}},
		}).Execute()
		status, _ = apiErr(t, resp, err)
		assert.Equal(t, http.StatusBadRequest, status, mp)
	}
	_, resp, err = e.api.SandboxAPI.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{
		Volumes: []apiclient.SandboxVolume{{VolumeId: "vol-a", MountPath: "/data", Subpath: apiclient.PtrString("../x")}},
	}).Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status, "subpath with ..")
	_, resp, err = e.api.SandboxAPI.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{
		Volumes: []apiclient.SandboxVolume{{VolumeId: "vol-ghost", MountPath: "/data"}},
	}).Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)

	// In use (even by a stopped sandbox) → 409.
	sb := e.create(apiclient.CreateSandbox{Volumes: []apiclient.SandboxVolume{{VolumeId: "vol-a", MountPath: "/home/daytona/data"}}})
	require.Len(t, sb.Volumes, 1)
	assert.Equal(t, v.Id, sb.Volumes[0].VolumeId, "resolved to the id")
	_, _, err = e.api.SandboxAPI.StopSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STOPPED)
	resp, err = vapi.DeleteVolume(e.ctx, v.Id).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, msg, "in use")

	list, _, err := vapi.ListVolumes(e.ctx).Execute()
	require.NoError(t, err)
	require.Len(t, list, 1)

	_, _, err = e.api.SandboxAPI.DeleteSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	resp, err = vapi.DeleteVolume(e.ctx, v.Id).Execute()
	require.NoError(t, err, "a destroying sandbox no longer holds the volume")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool {
		_, resp, _ := vapi.GetVolumeByName(e.ctx, "vol-a").Execute()
		return resp != nil && resp.StatusCode == http.StatusNotFound
	}, 30*time.Second, 10*time.Millisecond)
	list, _, err = vapi.ListVolumes(e.ctx).Execute()
	require.NoError(t, err)
	assert.Empty(t, list)
	list, _, err = vapi.ListVolumes(e.ctx).IncludeDeleted(true).Execute()
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, apiclient.VOLUMESTATE_DELETED, list[0].State)
}

func TestConformanceSnapshots(t *testing.T) {
	t.Parallel()
	// Transitions take 600ms so that the stop sent while a sandbox is being
	// snapshotted lands inside the snapshotting on a loaded machine.
	e := newEnv(t, Options{TimeUnit: 20 * time.Millisecond, TransitionDelay: 600 * time.Millisecond})
	sapi := e.api.SnapshotsAPI

	// Validation rules.
	bad := []apiclient.CreateSnapshot{
		{Name: "no-image"},
		{Name: "latest", ImageName: apiclient.PtrString("python:latest")},
		{Name: "untagged", ImageName: apiclient.PtrString("python")},
		{Name: "both", ImageName: apiclient.PtrString("python:3.12"), BuildInfo: &apiclient.CreateBuildInfo{DockerfileContent: "FROM x"}},
		{Name: "ep", Entrypoint: []string{"sleep"}, BuildInfo: &apiclient.CreateBuildInfo{DockerfileContent: "FROM x"}},
		{Name: "bad name!", ImageName: apiclient.PtrString("python:3.12")},
	}
	for _, c := range bad {
		_, resp, err := sapi.CreateSnapshot(e.ctx).CreateSnapshot(c).Execute()
		status, _ := apiErr(t, resp, err)
		assert.Equal(t, http.StatusBadRequest, status, c.Name)
	}

	sn, _, err := sapi.CreateSnapshot(e.ctx).CreateSnapshot(apiclient.CreateSnapshot{Name: "base:1", ImageName: apiclient.PtrString("python:3.12-slim")}).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SNAPSHOTSTATE_PENDING, sn.State)
	_, resp, err := sapi.CreateSnapshot(e.ctx).CreateSnapshot(apiclient.CreateSnapshot{Name: "base:1", ImageName: apiclient.PtrString("python:3.12-slim")}).Execute()
	status, _ := apiErr(t, resp, err)
	assert.Equal(t, http.StatusConflict, status, "duplicate name")

	// Not active yet → sandbox create 400.
	_, resp, err = e.api.SandboxAPI.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{Snapshot: apiclient.PtrString("base:1")}).Execute()
	status, msg := apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, msg, "Snapshot base:1 is ")

	var states []apiclient.SnapshotState
	require.Eventually(t, func() bool {
		got, _, err := sapi.GetSnapshot(e.ctx, "base:1").Execute()
		if err != nil {
			return false
		}
		if len(states) == 0 || states[len(states)-1] != got.State {
			states = append(states, got.State)
		}
		return got.State == apiclient.SNAPSHOTSTATE_ACTIVE
	}, 30*time.Second, 5*time.Millisecond)
	assert.Contains(t, states, apiclient.SNAPSHOTSTATE_ACTIVE)

	// Names may contain "/" (image-like names); the client escapes it in the path.
	slash, _, err := sapi.CreateSnapshot(e.ctx).CreateSnapshot(apiclient.CreateSnapshot{Name: "org/tools:2", ImageName: apiclient.PtrString("ghcr.io/org/tools:2")}).Execute()
	require.NoError(t, err)
	byName, _, err := sapi.GetSnapshot(e.ctx, "org/tools:2").Execute()
	require.NoError(t, err)
	assert.Equal(t, slash.Id, byName.Id)
	resp, err = sapi.RemoveSnapshot(e.ctx, slash.Id).Execute()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, resp, _ := sapi.GetSnapshot(e.ctx, slash.Id).Execute()
		return resp != nil && resp.StatusCode == http.StatusNotFound
	}, 30*time.Second, 10*time.Millisecond)

	bsn, _, err := sapi.CreateSnapshot(e.ctx).CreateSnapshot(apiclient.CreateSnapshot{Name: "built", BuildInfo: &apiclient.CreateBuildInfo{DockerfileContent: "FROM alpine:3.20"}}).Execute()
	require.NoError(t, err)
	require.NotNil(t, bsn.BuildInfo)

	// Paginated list.
	page, _, err := sapi.GetAllSnapshots(e.ctx).Limit(1).Page(2).Sort("name").Order("asc").Execute()
	require.NoError(t, err)
	assert.Equal(t, float32(2), page.Total)
	assert.Equal(t, float32(2), page.TotalPages)
	require.Len(t, page.Items, 1)
	assert.Equal(t, "built", page.Items[0].Name)
	page, _, err = sapi.GetAllSnapshots(e.ctx).Name("bas").Execute()
	require.NoError(t, err)
	require.Len(t, page.Items, 1)

	// Sandbox from the snapshot: resources come from it; then sandbox→snapshot.
	// Auto-stop off: TimeUnit is only 20ms in this test.
	sb := e.create(apiclient.CreateSandbox{Snapshot: apiclient.PtrString("base:1"), AutoStopInterval: apiclient.PtrInt32(0)})
	assert.Equal(t, "base:1", sb.GetSnapshot())
	_, err = e.tb(sb).FileSystemAPI.CreateFolder(e.ctx).Path("/home/daytona/proj").Mode("0755").Execute()
	require.NoError(t, err)
	res := e.exec(sb, "echo template-data > /home/daytona/proj/marker")
	require.Equal(t, int32(0), res.GetExitCode(), res.Result)
	got, _, err := e.api.SandboxAPI.CreateSandboxSnapshot(e.ctx, sb.Id).CreateSandboxSnapshot(apiclient.CreateSandboxSnapshot{Name: "ckpt-1"}).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_SNAPSHOTTING, got.GetState())
	_, resp, err = e.api.SandboxAPI.StopSandbox(e.ctx, sb.Id).Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusConflict, status, "stop while snapshotting")
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STARTED)
	ck, _, err := sapi.GetSnapshot(e.ctx, "ckpt-1").Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SNAPSHOTSTATE_ACTIVE, ck.State)
	sb2 := e.create(apiclient.CreateSandbox{Snapshot: apiclient.PtrString(ck.Id), AutoStopInterval: apiclient.PtrInt32(0)})
	res = e.exec(sb2, "cat /home/daytona/proj/marker")
	assert.Equal(t, "template-data\n", res.Result, "the template is a copy of the sandbox filesystem")

	// Deactivate → 204, inactive → create 400, activate too early → 400, later OK.
	resp, err = sapi.DeactivateSnapshot(e.ctx, sn.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	_, resp, err = e.api.SandboxAPI.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{Snapshot: apiclient.PtrString("base:1")}).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "Snapshot base:1 is inactive", msg)
	_, resp, err = sapi.ActivateSnapshot(e.ctx, sn.Id).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, msg, "deactivation is still in progress")
	_, resp, err = sapi.ActivateSnapshot(e.ctx, "base:1").Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "Validation failed (uuid is expected)", msg)
	_, resp, err = sapi.ActivateSnapshot(e.ctx, ck.Id).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, msg, "already active")
	time.Sleep(10 * 20 * time.Millisecond)
	act, _, err := sapi.ActivateSnapshot(e.ctx, sn.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SNAPSHOTSTATE_PENDING, act.State)
	require.Eventually(t, func() bool {
		got, _, err := sapi.GetSnapshot(e.ctx, sn.Id).Execute()
		return err == nil && got.State == apiclient.SNAPSHOTSTATE_ACTIVE
	}, 30*time.Second, 10*time.Millisecond)

	// Remove → 200, removing, then gone.
	resp, err = sapi.RemoveSnapshot(e.ctx, ck.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool {
		_, resp, _ := sapi.GetSnapshot(e.ctx, ck.Id).Execute()
		return resp != nil && resp.StatusCode == http.StatusNotFound
	}, 30*time.Second, 10*time.Millisecond)
	resp, err = sapi.RemoveSnapshot(e.ctx, "00000000-0000-4000-8000-000000000000").Execute()
	status, _ = apiErr(t, resp, err)
	assert.Equal(t, http.StatusNotFound, status)

	// Snapshot of a sandbox in the wrong state → 400.
	_, _, err = e.api.SandboxAPI.StopSandbox(e.ctx, sb2.Id).Execute()
	require.NoError(t, err)
	e.waitState(sb2.Id, apiclient.SANDBOXSTATE_STOPPED)
	code, _, _ := e.raw(http.MethodPost, "/api/sandbox/"+sb2.Id+"/archive", nil, nil)
	require.Equal(t, http.StatusOK, code)
	e.waitState(sb2.Id, apiclient.SANDBOXSTATE_ARCHIVED)
	_, resp, err = e.api.SandboxAPI.CreateSandboxSnapshot(e.ctx, sb2.Id).CreateSandboxSnapshot(apiclient.CreateSandboxSnapshot{Name: "x"}).Execute()
	status, msg = apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, msg, "started or stopped")
}

// A snapshot's pull is two steps (pending → pulling → active). Each step
// used to be a timer of its own, and a loaded machine can run two timers'
// goroutines in either order: the last step, run first, found the snapshot
// still pending and did nothing, and the snapshot stayed pulling forever (a
// wait for it timed out). With the shortest delay both timers fire at once,
// so many creates make the inversion likely; every snapshot must still end
// active.
func TestSnapshotPullStepsKeepTheirOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{TransitionDelay: time.Nanosecond})
	sapi := e.api.SnapshotsAPI
	const n = 60
	ids := make([]string, n)
	for i := range n {
		sn, _, err := sapi.CreateSnapshot(e.ctx).CreateSnapshot(apiclient.CreateSnapshot{Name: fmt.Sprintf("order-%d", i), ImageName: apiclient.PtrString("python:3.12-slim")}).Execute()
		require.NoError(t, err)
		ids[i] = sn.Id
	}
	for _, id := range ids {
		require.Eventually(t, func() bool {
			got, _, err := sapi.GetSnapshot(e.ctx, id).Execute()
			return err == nil && got.State == apiclient.SNAPSHOTSTATE_ACTIVE
		}, 30*time.Second, 10*time.Millisecond, "snapshot %s never became active", id)
	}
}
