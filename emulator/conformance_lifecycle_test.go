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

// These tests pin the lifecycle facts read from Daytona's API server
// (v0.190.0, apps/api/src/sandbox): recoverable errors, archived restores,
// organisation limits, the volume quota, idle snapshots, activity and lists.

func (e *env) get(id string) *apiclient.Sandbox {
	e.t.Helper()
	sb, _, err := e.api.SandboxAPI.GetSandbox(e.ctx, id).Execute()
	require.NoError(e.t, err)
	return sb
}

func (e *env) stop(id string) {
	e.t.Helper()
	_, _, err := e.api.SandboxAPI.StopSandbox(e.ctx, id).Execute()
	require.NoError(e.t, err)
	e.waitState(id, apiclient.SANDBOXSTATE_STOPPED)
}

func (e *env) archive(id string) {
	e.t.Helper()
	_, _, err := e.api.SandboxAPI.ArchiveSandbox(e.ctx, id).Execute()
	require.NoError(e.t, err)
	e.waitState(id, apiclient.SANDBOXSTATE_ARCHIVED)
}

// wantAPIErr asserts a generated-client call failed with Daytona's status and message.
func wantAPIErr(t testing.TB, resp *http.Response, err error, status int, msg string, why ...any) {
	t.Helper()
	gotStatus, gotMsg := apiErr(t, resp, err)
	assert.Equal(t, status, gotStatus, why...)
	assert.Equal(t, msg, gotMsg, why...)
}

func TestConformanceRecoverableErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	api := e.api.SandboxAPI

	// A recoverable error: state error, recoverable, the runner's reason; the
	// toolbox is gone, stop and start are refused, recover brings it back.
	sb := e.create(apiclient.CreateSandbox{Name: apiclient.PtrString("broken-1")})
	e.upload(sb, "/home/daytona/kept.txt", "survives recovery")
	require.NoError(t, e.srv.BreakSandbox(sb.Id, true))
	got := e.get(sb.Id)
	assert.Equal(t, apiclient.SANDBOXSTATE_ERROR, got.GetState())
	assert.Equal(t, apiclient.SANDBOXDESIREDSTATE_STARTED, got.GetDesiredState(), "the desired state stays")
	assert.True(t, got.GetRecoverable())
	assert.Equal(t, reasonRecoverable, got.GetErrorReason())
	_, resp, err := e.tb(sb).InfoAPI.GetUserHomeDir(e.ctx).Execute()
	status, _ := apiErr(t, resp, err)
	assert.Equal(t, http.StatusBadRequest, status, "no toolbox while errored")
	_, resp, err = api.StopSandbox(e.ctx, sb.Id).Execute()
	wantAPIErr(t, resp, err, http.StatusBadRequest, "Sandbox is in an errored state")
	_, resp, err = api.StartSandbox(e.ctx, sb.Id).Execute()
	wantAPIErr(t, resp, err, http.StatusBadRequest, "Sandbox is in an errored state")
	list, _, err := api.ListSandboxes(e.ctx).Name("broken-1").Execute()
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	assert.True(t, list.Items[0].GetRecoverable(), "list items carry recoverable too")

	got, resp, err = api.RecoverSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, got.GetState(), "recover starts it (and waits like start)")
	assert.False(t, got.GetRecoverable())
	assert.Empty(t, got.GetErrorReason())
	body, code := e.download(got, "/home/daytona/kept.txt")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "survives recovery", body, "recovery keeps the sandbox's files")

	// Recover of a sandbox that is not errored: not recoverable.
	_, resp, err = api.RecoverSandbox(e.ctx, sb.Id).Execute()
	wantAPIErr(t, resp, err, http.StatusBadRequest, "Sandbox is not in a recoverable state")

	// skipStart leaves it stopped.
	require.NoError(t, e.srv.BreakSandbox(sb.Id, true))
	got, _, err = api.RecoverSandbox(e.ctx, sb.Id).SkipStart(true).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_STOPPED, got.GetState())
	assert.Equal(t, apiclient.SANDBOXDESIREDSTATE_STOPPED, got.GetDesiredState())

	// An unrecoverable error: recover refused, delete allowed.
	bad := e.create(apiclient.CreateSandbox{})
	require.NoError(t, e.srv.BreakSandbox(bad.Id, false))
	got = e.get(bad.Id)
	assert.False(t, got.GetRecoverable())
	assert.Equal(t, reasonUnrecoverable, got.GetErrorReason())
	_, resp, err = api.RecoverSandbox(e.ctx, bad.Id).Execute()
	wantAPIErr(t, resp, err, http.StatusBadRequest, "Sandbox is not in a recoverable state")
	_, _, err = api.DeleteSandbox(e.ctx, bad.Id).Execute()
	require.NoError(t, err)
	e.waitState(bad.Id, "")

	// Only a started sandbox can break.
	assert.Error(t, e.srv.BreakSandbox(sb.Id, true), "stopped")
	assert.Error(t, e.srv.BreakSandbox("missing", true))
}

func TestFaultSandboxErrors(t *testing.T) {
	t.Parallel()
	for _, recoverable := range []bool{true, false} {
		share := 0.0
		if recoverable {
			share = 1
		}
		e := newEnv(t, Options{Faults: Faults{SandboxErrorRate: 1, SandboxErrorRecoverable: share, Seed: 3}})
		// The fault breaks running sandboxes at the next cron tick, possibly
		// before the create's answer: then the create answers Daytona's 400.
		sb, resp, err := e.api.SandboxAPI.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{Name: apiclient.PtrString("flaky")}).Execute()
		if err != nil {
			status, msg := apiErr(t, resp, err)
			require.Equal(t, http.StatusBadRequest, status)
			require.True(t, strings.HasPrefix(msg, "Sandbox failed to start: "), msg)
		} else {
			require.Equal(t, "flaky", sb.Name)
		}
		got := e.waitState("flaky", apiclient.SANDBOXSTATE_ERROR)
		assert.Equal(t, recoverable, got.GetRecoverable())
	}
}

func TestConformanceArchivedRestore(t *testing.T) {
	t.Parallel()
	// The checks made while the restore waits (four calls) must fit in it on a
	// loaded machine: 3s, not the few hundred milliseconds a quiet one needs.
	// Transitions take a second, so that the poll for "restoring" (which lasts
	// one transition) cannot miss it on a loaded machine, as it could at 30ms.
	const restore = 3 * time.Second
	e := newEnv(t, Options{RestoreDelay: restore, TransitionDelay: time.Second})
	api := e.api.SandboxAPI
	sb := e.create(apiclient.CreateSandbox{Name: apiclient.PtrString("arch-1")})
	e.stop(sb.Id)
	e.archive(sb.Id)

	// Start: the answer (at once) and GET keep "archived" with desiredState
	// started for RestoreDelay; a second start meanwhile is 409; the list
	// shows the item as restoring.
	began := time.Now()
	got, _, err := api.StartSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_ARCHIVED, got.GetState())
	assert.Equal(t, apiclient.SANDBOXDESIREDSTATE_STARTED, got.GetDesiredState())
	_, resp, err := api.StartSandbox(e.ctx, sb.Id).Execute()
	wantAPIErr(t, resp, err, http.StatusConflict, "Sandbox state change in progress")
	got = e.get(sb.Id)
	assert.Equal(t, apiclient.SANDBOXSTATE_ARCHIVED, got.GetState())
	assert.Equal(t, apiclient.SANDBOXDESIREDSTATE_STARTED, got.GetDesiredState())
	list, _, err := api.ListSandboxes(e.ctx).Name("arch-1").Execute()
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	assert.Equal(t, apiclient.SANDBOXSTATE_RESTORING, list.Items[0].GetState())
	require.Less(t, time.Since(began), restore, "the checks above ran within the restore delay")
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_RESTORING)
	assert.GreaterOrEqual(t, time.Since(began), restore, "archived for the whole restore delay")
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STARTED)

	// Deleting an archived sandbox: it shows archived, not destroying, until gone.
	e.stop(sb.Id)
	e.archive(sb.Id)
	got, _, err = api.DeleteSandbox(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	assert.Equal(t, apiclient.SANDBOXSTATE_ARCHIVED, got.GetState())
	assert.Equal(t, apiclient.SANDBOXDESIREDSTATE_DESTROYED, got.GetDesiredState())
	e.waitState(sb.Id, "")
}

func TestConformanceArchivingAllowsStartAndDelete(t *testing.T) {
	t.Parallel()
	// The start or delete must land while archiving lasts: 1.5s leaves a loaded
	// machine room between the two calls.
	e := newEnv(t, Options{TransitionDelay: 1500 * time.Millisecond})
	api := e.api.SandboxAPI
	for _, then := range []string{"start", "delete"} {
		sb := e.create(apiclient.CreateSandbox{})
		e.stop(sb.Id)
		got, _, err := api.ArchiveSandbox(e.ctx, sb.Id).Execute()
		require.NoError(t, err)
		require.Equal(t, apiclient.SANDBOXSTATE_ARCHIVING, got.GetState())
		switch then {
		case "start":
			got, _, err = api.StartSandbox(e.ctx, sb.Id).Execute()
			require.NoError(t, err, "start during archiving")
			assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, got.GetState(), "the archive is abandoned")
		case "delete":
			got, _, err = api.DeleteSandbox(e.ctx, sb.Id).Execute()
			require.NoError(t, err, "delete during archiving")
			assert.Equal(t, apiclient.SANDBOXSTATE_DESTROYING, got.GetState())
			e.waitState(sb.Id, "")
		}
	}
}

func TestConformanceOrganisationLimits(t *testing.T) {
	t.Parallel()
	// Sandboxes without a snapshot have 1 CPU, 1 GiB and 3 GiB of disk.
	cpuMsg := "Total CPU limit exceeded. Maximum allowed: 2.\n" + upgradeTierMessage
	memMsg := "Total memory limit exceeded. Maximum allowed: 2GiB.\n" + upgradeTierMessage
	diskMsg := "Total disk limit exceeded. Maximum allowed: 6GiB.\n" + archiveSandboxesMessage + "\n" + upgradeTierMessage
	assert.Equal(t, "To increase concurrency limits, upgrade your organization's Tier by visiting https://app.daytona.io/dashboard/limits.", upgradeTierMessage)

	for _, c := range []struct {
		name   string
		limits Limits
		msg    string
	}{
		{"cpu", Limits{CPU: 2}, cpuMsg},
		{"memory", Limits{MemoryGiB: 2}, memMsg},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{Limits: c.limits})
			api := e.api.SandboxAPI
			a := e.create(apiclient.CreateSandbox{})
			e.create(apiclient.CreateSandbox{})
			_, resp, err := api.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{Name: apiclient.PtrString("third")}).Execute()
			wantAPIErr(t, resp, err, http.StatusBadRequest, c.msg, "400, not 429")
			_, resp, _ = api.GetSandbox(e.ctx, "third").Execute()
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, "nothing was created")

			// A stopped sandbox frees CPU and memory; starting it again is refused
			// while the organisation is full.
			e.stop(a.Id)
			third := e.create(apiclient.CreateSandbox{Name: apiclient.PtrString("third")})
			_, resp, err = api.StartSandbox(e.ctx, a.Id).Execute()
			wantAPIErr(t, resp, err, http.StatusBadRequest, c.msg, "starts are checked too")
			e.stop(third.Id)
			got, _, err := api.StartSandbox(e.ctx, a.Id).Execute()
			require.NoError(t, err)
			assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, got.GetState())
		})
	}

	t.Run("disk", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Options{Limits: Limits{DiskGiB: 6}})
		api := e.api.SandboxAPI
		a := e.create(apiclient.CreateSandbox{})
		b := e.create(apiclient.CreateSandbox{})
		e.stop(a.Id)
		e.stop(b.Id)
		_, resp, err := api.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{}).Execute()
		wantAPIErr(t, resp, err, http.StatusBadRequest, diskMsg, "stopped sandboxes count toward disk")
		e.archive(a.Id)
		e.create(apiclient.CreateSandbox{}) // archived ones do not
		// Restoring the archived one would need its disk back.
		_, resp, err = api.StartSandbox(e.ctx, a.Id).Execute()
		wantAPIErr(t, resp, err, http.StatusBadRequest, diskMsg)
	})

	t.Run("suspended", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Options{})
		api := e.api.SandboxAPI
		sb := e.create(apiclient.CreateSandbox{})
		e.stop(sb.Id)
		e.srv.SetLimits(Limits{Suspended: true, SuspensionReason: "Depleted credits"})
		_, resp, err := api.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{}).Execute()
		wantAPIErr(t, resp, err, http.StatusForbidden, "Organization is suspended: Depleted credits")
		_, resp, err = api.StartSandbox(e.ctx, sb.Id).Execute()
		wantAPIErr(t, resp, err, http.StatusForbidden, "Organization is suspended: Depleted credits")
		_, resp, err = e.api.VolumesAPI.CreateVolume(e.ctx).CreateVolume(apiclient.CreateVolume{Name: "v"}).Execute()
		wantAPIErr(t, resp, err, http.StatusForbidden, "Organization is suspended: Depleted credits")
		e.srv.SetLimits(Limits{Suspended: true})
		_, resp, err = api.StartSandbox(e.ctx, sb.Id).Execute()
		wantAPIErr(t, resp, err, http.StatusForbidden, "Organization is suspended")
		e.srv.SetLimits(Limits{})
		_, _, err = api.StartSandbox(e.ctx, sb.Id).Execute()
		require.NoError(t, err)
	})
}

func TestConformanceVolumeQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}) // Daytona's default quota: 100
	vols := e.api.VolumesAPI
	for i := range 100 {
		_, _, err := vols.CreateVolume(e.ctx).CreateVolume(apiclient.CreateVolume{Name: fmt.Sprintf("q-%d", i)}).Execute()
		require.NoError(t, err)
	}
	_, resp, err := vols.CreateVolume(e.ctx).CreateVolume(apiclient.CreateVolume{Name: "q-100"}).Execute()
	wantAPIErr(t, resp, err, http.StatusBadRequest, "Volume quota exceeded. Maximum allowed: 100")
	// The quota is checked before the name: a taken name at the limit reads as over quota.
	_, resp, err = vols.CreateVolume(e.ctx).CreateVolume(apiclient.CreateVolume{Name: "q-7"}).Execute()
	wantAPIErr(t, resp, err, http.StatusBadRequest, "Volume quota exceeded. Maximum allowed: 100")

	// Configurable; a deleted volume frees its place.
	small := newEnv(t, Options{Limits: Limits{Volumes: 1}})
	v := small.newVolume("only")
	_, resp, err = small.api.VolumesAPI.CreateVolume(small.ctx).CreateVolume(apiclient.CreateVolume{Name: "second"}).Execute()
	wantAPIErr(t, resp, err, http.StatusBadRequest, "Volume quota exceeded. Maximum allowed: 1")
	_, err = small.api.VolumesAPI.DeleteVolume(small.ctx, v.Id).Execute()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, _, err := small.api.VolumesAPI.CreateVolume(small.ctx).CreateVolume(apiclient.CreateVolume{Name: "second"}).Execute()
		return err == nil
	}, 30*time.Second, 20*time.Millisecond)
}

func TestConformanceIdleSnapshotsBecomeInactive(t *testing.T) {
	t.Parallel()
	// One "minute" = 50ms: idle snapshots are looked for every 500ms (Daytona:
	// every 10 minutes) and the re-activation cooldown is 500ms too. The idle
	// limit is 3s so that the steps between two uses (a create, an activation
	// and the create after it) fit in it on a loaded machine.
	const idle = 3 * time.Second
	e := newEnv(t, Options{TimeUnit: 50 * time.Millisecond, SnapshotIdleLimit: idle})
	snaps := e.api.SnapshotsAPI
	sn, _, err := snaps.CreateSnapshot(e.ctx).CreateSnapshot(apiclient.CreateSnapshot{Name: "idle:1", ImageName: apiclient.PtrString("ubuntu:22.04")}).Execute()
	require.NoError(t, err)
	get := func() *apiclient.SnapshotDto {
		got, _, err := snaps.GetSnapshot(e.ctx, sn.Id).Execute()
		require.NoError(t, err)
		return got
	}
	state := func() apiclient.SnapshotState { return get().State }
	require.Eventually(t, func() bool { return state() == apiclient.SNAPSHOTSTATE_ACTIVE }, 30*time.Second, 10*time.Millisecond)
	// Use it: the idle clock restarts at the last create.
	used := time.Now()
	e.create(apiclient.CreateSandbox{Snapshot: apiclient.PtrString("idle:1")})
	require.Eventually(t, func() bool { return state() == apiclient.SNAPSHOTSTATE_INACTIVE }, 30*time.Second, 10*time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(used), idle, "not before the idle limit")

	_, resp, err := e.api.SandboxAPI.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{Snapshot: apiclient.PtrString("idle:1")}).Execute()
	wantAPIErr(t, resp, err, http.StatusBadRequest, "Snapshot idle:1 is inactive")

	// An activation is a use (Daytona's activateSnapshot sets lastUsedAt): the
	// snapshot, idle for longer than the limit, is not deactivated again by
	// the next sweep before anyone could create from it.
	var activating time.Time
	require.Eventually(t, func() bool {
		activating = time.Now().UTC().Truncate(time.Millisecond)
		_, _, err := snaps.ActivateSnapshot(e.ctx, sn.Id).Execute()
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "activate after the cooldown")
	lastUsed := get().GetLastUsedAt()
	assert.False(t, lastUsed.Before(activating), "the activation is the last use: %s, activated at %s", lastUsed, activating)
	require.Eventually(t, func() bool { return state() == apiclient.SNAPSHOTSTATE_ACTIVE }, 30*time.Second, 10*time.Millisecond)
	e.create(apiclient.CreateSandbox{Snapshot: apiclient.PtrString("idle:1")})
}

func TestConformanceActivityThrottledAndFlushed(t *testing.T) {
	t.Parallel()
	// The throttle and the proxy interval are wide so that a loaded machine's
	// pauses between two calls of a step stay well inside them: the repeat 50ms
	// after a keep-alive must still fall within the throttle, the second toolbox
	// call a throttle later still within the proxy interval.
	const (
		throttle = 1500 * time.Millisecond
		flush    = 250 * time.Millisecond
		proxy    = 6 * time.Second
	)
	e := newEnv(t, Options{Activity: ActivityTimings{Throttle: throttle, Flush: flush, Proxy: proxy}})
	api := e.api.SandboxAPI
	sb := e.create(apiclient.CreateSandbox{})
	lastActivity := func() time.Time {
		at, err := time.Parse(time.RFC3339Nano, e.get(sb.Id).GetLastActivityAt())
		require.NoError(t, err)
		return at
	}
	start := lastActivity()

	// Plain API calls do not count.
	time.Sleep(20 * time.Millisecond)
	for range 3 {
		e.get(sb.Id)
		_, _, err := api.ReplaceLabels(e.ctx, sb.Id).SandboxLabels(apiclient.SandboxLabels{Labels: map[string]string{"a": "b"}}).Execute()
		require.NoError(t, err)
		_, _, err = api.ListSandboxes(e.ctx).Execute()
		require.NoError(t, err)
	}
	time.Sleep(2 * flush)
	assert.Equal(t, start, lastActivity(), "GET, labels and list are not activity")

	// A keep-alive answers 201 at once but reaches the store only at a flush;
	// a repeat within the throttle is dropped.
	// The stored time is when the emulator took the first update: between its
	// request's send and its answer (stored with millisecond precision), and
	// so before the repeat was even sent.
	firstSent := time.Now().UTC().Truncate(time.Millisecond)
	resp, err := api.UpdateLastActivity(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	firstAnswered := time.Now().UTC()
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	time.Sleep(50 * time.Millisecond)
	_, err = api.UpdateLastActivity(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	require.Eventually(t, func() bool { return lastActivity().After(start) }, 30*time.Second, 10*time.Millisecond)
	got := lastActivity()
	assert.False(t, got.Before(firstSent) || got.After(firstAnswered),
		"the first update is the one stored, not the repeat 50ms later: stored %s, first update sent %s, answered %s", got, firstSent, firstAnswered)

	// After the throttle a keep-alive counts again.
	time.Sleep(throttle)
	_, err = api.UpdateLastActivity(e.ctx, sb.Id).Execute()
	require.NoError(t, err)
	require.Eventually(t, func() bool { return lastActivity().After(got) }, 30*time.Second, 10*time.Millisecond)

	// Toolbox traffic counts once per proxy interval.
	time.Sleep(throttle)
	before := lastActivity()
	code, _, _ := e.raw(http.MethodGet, "/toolbox/"+sb.Id+"/work-dir", nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool { return lastActivity().After(before) }, 30*time.Second, 10*time.Millisecond)
	counted := lastActivity()
	time.Sleep(throttle) // past the API throttle, within the proxy's interval
	code, _, _ = e.raw(http.MethodGet, "/toolbox/"+sb.Id+"/work-dir", nil, nil)
	require.Equal(t, http.StatusOK, code)
	time.Sleep(2 * flush)
	assert.Equal(t, counted, lastActivity(), "a second toolbox call within the proxy interval does not count")
}

func TestConformanceListOrderAndCursor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	api := e.api.SandboxAPI
	var ids []string
	for _, name := range []string{"ord-b", "ord-c", "ord-a"} { // created in this order
		ids = append(ids, e.create(apiclient.CreateSandbox{Name: apiclient.PtrString(name)}).Id)
		time.Sleep(5 * time.Millisecond)
	}
	names := func(req apiclient.SandboxAPIListSandboxesRequest) []string {
		res, _, err := req.Execute()
		require.NoError(t, err)
		var out []string
		for _, it := range res.Items {
			out = append(out, it.Name)
		}
		return out
	}
	// Default: last activity, newest first. A state change is activity.
	assert.Equal(t, []string{"ord-a", "ord-c", "ord-b"}, names(api.ListSandboxes(e.ctx)))
	e.stop(ids[0])
	assert.Equal(t, []string{"ord-b", "ord-a", "ord-c"}, names(api.ListSandboxes(e.ctx)), "ord-b moved to the front")
	assert.Equal(t, []string{"ord-b", "ord-c", "ord-a"},
		names(api.ListSandboxes(e.ctx).Sort(apiclient.SANDBOXLISTSORTFIELD_CREATED_AT).Order(apiclient.SANDBOXLISTSORTDIRECTION_ASC)))
	assert.Equal(t, []string{"ord-a", "ord-c", "ord-b"},
		names(api.ListSandboxes(e.ctx).Sort(apiclient.SANDBOXLISTSORTFIELD_CREATED_AT)), "desc by default")
	assert.Equal(t, []string{"ord-a", "ord-b", "ord-c"},
		names(api.ListSandboxes(e.ctx).Sort(apiclient.SANDBOXLISTSORTFIELD_NAME).Order(apiclient.SANDBOXLISTSORTDIRECTION_ASC)))

	// Walking by creation time, one per page, while activity reorders the
	// default order: every sandbox exactly once, in creation order.
	var walked []string
	var cursor *string
	for range 5 {
		req := api.ListSandboxes(e.ctx).Limit(1).Sort(apiclient.SANDBOXLISTSORTFIELD_CREATED_AT).Order(apiclient.SANDBOXLISTSORTDIRECTION_ASC)
		if cursor != nil {
			req = req.Cursor(*cursor)
		}
		res, _, err := req.Execute()
		require.NoError(t, err)
		for _, it := range res.Items {
			walked = append(walked, it.Name)
			_, _, err := api.StartSandbox(e.ctx, ids[0]).Execute() // activity on ord-b mid-walk
			require.NoError(t, err)
		}
		cursor = res.NextCursor.Get()
		if cursor == nil {
			break
		}
	}
	assert.Equal(t, []string{"ord-b", "ord-c", "ord-a"}, walked)

	// A cursor belongs to its order; bad sort, order and limit are 400.
	res, _, err := api.ListSandboxes(e.ctx).Limit(1).Execute()
	require.NoError(t, err)
	require.NotNil(t, res.NextCursor.Get())
	_, resp, err := api.ListSandboxes(e.ctx).Cursor(*res.NextCursor.Get()).Sort(apiclient.SANDBOXLISTSORTFIELD_NAME).Execute()
	wantAPIErr(t, resp, err, http.StatusBadRequest, "Invalid cursor")
	// Requests the document forbids cannot go through the validator: send them plainly.
	for query, want := range map[string]string{
		"limit=201":      "limit must not be less than 1, limit must not be greater than 200",
		"sort=state":     "sort must be one of the following values: name, cpu, memoryGib, diskGib, lastActivityAt, createdAt",
		"order=up":       "order must be one of the following values: asc, desc",
		"cursor=garbage": "Invalid cursor",
	} {
		resp, err := http.Get(e.hs.URL + "/api/sandbox?" + query)
		require.NoError(t, err)
		var body apiErrorBody
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, query)
		assert.Equal(t, want, body.Message, query)
	}
}
