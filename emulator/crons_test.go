package emulator

import (
	"net/http"
	"testing"
	"time"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (e *env) state(id string) (apiclient.SandboxState, int) {
	sb, resp, err := e.api.SandboxAPI.GetSandbox(e.ctx, id).Execute()
	if err != nil {
		if resp != nil {
			return "", resp.StatusCode
		}
		return "", 0
	}
	return sb.GetState(), http.StatusOK
}

func TestCronAutoStopPostponedByToolboxActivity(t *testing.T) {
	t.Parallel()
	// One "minute" = 100ms; autoStop 15 → 1.5s idle, long beside the pauses of
	// a loaded machine between two calls 100ms apart, which would otherwise
	// let the sandbox stop while it is being used.
	const unit, minutes = 100 * time.Millisecond, 15
	const interval = minutes * unit
	e := newEnv(t, Options{TimeUnit: unit, CronInterval: 20 * time.Millisecond})
	sb := e.create(apiclient.CreateSandbox{AutoStopInterval: apiclient.PtrInt32(minutes)})
	idle := e.create(apiclient.CreateSandbox{AutoStopInterval: apiclient.PtrInt32(0)})

	// Toolbox traffic every 100ms for longer than the interval keeps it running.
	for range 20 {
		code, _, _ := e.raw(http.MethodGet, "/toolbox/"+sb.Id+"/work-dir", nil, nil)
		require.Equal(t, http.StatusOK, code)
		time.Sleep(100 * time.Millisecond)
	}
	st, _ := e.state(sb.Id)
	assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, st, "toolbox activity postpones auto-stop")

	// Keep-alive through the API works too.
	for range 20 {
		_, err := e.api.SandboxAPI.UpdateLastActivity(e.ctx, sb.Id).Execute()
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond)
	}
	st, _ = e.state(sb.Id)
	assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, st, "last-activity postpones auto-stop")

	// Requests with X-Daytona-Skip-Last-Activity-Update do not count. The stop
	// comes at least the interval after the last activity stored, which a GET
	// shows (GETs are not activity); it is measured from the last one seen
	// while the sandbox still ran, since the stored value only moves forward.
	var stored time.Time
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, _ := e.raw(http.MethodGet, "/toolbox/"+sb.Id+"/work-dir", nil, map[string]string{"X-Daytona-Skip-Last-Activity-Update": "true"})
		got := e.get(sb.Id)
		if code != http.StatusOK || got.GetState() != apiclient.SANDBOXSTATE_STARTED {
			break // no longer started
		}
		at, err := time.Parse(time.RFC3339Nano, got.GetLastActivityAt())
		require.NoError(t, err)
		stored = at
		require.True(t, time.Now().Before(deadline), "auto-stop never happened")
		time.Sleep(20 * time.Millisecond)
	}
	require.False(t, stored.IsZero(), "the sandbox was seen running before it stopped")
	assert.GreaterOrEqual(t, time.Since(stored), interval, "not before the interval")
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STOPPED)

	// autoStopInterval 0 disables it (it has been idle for more than the interval by now).
	st, _ = e.state(idle.Id)
	assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, st)
}

func TestCronAutoDeleteAndEphemeral(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{TimeUnit: 100 * time.Millisecond, CronInterval: 20 * time.Millisecond})

	// Auto-delete 3 units after it was stopped (the stop resets lastActivityAt).
	sb := e.create(apiclient.CreateSandbox{AutoDeleteInterval: apiclient.PtrInt32(3), AutoStopInterval: apiclient.PtrInt32(0)})
	keep := e.create(apiclient.CreateSandbox{AutoStopInterval: apiclient.PtrInt32(0)}) // default -1: never deleted
	for _, id := range []string{sb.Id, keep.Id} {
		_, _, err := e.api.SandboxAPI.StopSandbox(e.ctx, id).Execute()
		require.NoError(t, err)
	}
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STOPPED)
	// The interval counts from the stop's stored activity time, not from when
	// this test saw the stop (on a loaded machine that can be much later).
	stopped, err := time.Parse(time.RFC3339Nano, e.get(sb.Id).GetLastActivityAt())
	require.NoError(t, err)
	e.waitState(keep.Id, apiclient.SANDBOXSTATE_STOPPED)
	e.waitState(sb.Id, "")
	assert.GreaterOrEqual(t, time.Since(stopped), 300*time.Millisecond, "not before 3 units after the stop")
	time.Sleep(300 * time.Millisecond)
	st, _ := e.state(keep.Id)
	assert.Equal(t, apiclient.SANDBOXSTATE_STOPPED, st, "negative autoDeleteInterval disables it")

	// Ephemeral (autoDelete 0) + auto-stop: the auto-stop deletes it.
	eph := e.create(apiclient.CreateSandbox{AutoDeleteInterval: apiclient.PtrInt32(0), AutoStopInterval: apiclient.PtrInt32(2)})
	sawStopped := false
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, code := e.state(eph.Id)
		if code == http.StatusNotFound {
			break
		}
		if st == apiclient.SANDBOXSTATE_STOPPED {
			sawStopped = true
		}
		require.True(t, time.Now().Before(deadline), "ephemeral sandbox was not deleted")
		time.Sleep(10 * time.Millisecond)
	}
	assert.False(t, sawStopped, "ephemeral sandboxes go to destroying, never stopped")

	// Auto-archive: stopped for autoArchiveInterval units.
	arch := e.create(apiclient.CreateSandbox{AutoArchiveInterval: apiclient.PtrInt32(2), AutoStopInterval: apiclient.PtrInt32(0)})
	_, _, err = e.api.SandboxAPI.StopSandbox(e.ctx, arch.Id).Execute()
	require.NoError(t, err)
	e.waitState(arch.Id, apiclient.SANDBOXSTATE_ARCHIVED)
}
