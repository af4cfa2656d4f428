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
	// One "minute" = 100ms; autoStop 4 → 400ms idle.
	e := newEnv(t, Options{TimeUnit: 100 * time.Millisecond, CronInterval: 20 * time.Millisecond})
	sb := e.create(apiclient.CreateSandbox{AutoStopInterval: apiclient.PtrInt32(4)})
	idle := e.create(apiclient.CreateSandbox{AutoStopInterval: apiclient.PtrInt32(0)})

	// Toolbox traffic every 100ms for 1s keeps it running.
	for range 10 {
		code, _, _ := e.raw(http.MethodGet, "/toolbox/"+sb.Id+"/work-dir", nil, nil)
		require.Equal(t, http.StatusOK, code)
		time.Sleep(100 * time.Millisecond)
	}
	st, _ := e.state(sb.Id)
	assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, st, "toolbox activity postpones auto-stop")

	// Keep-alive through the API works too.
	for range 5 {
		_, err := e.api.SandboxAPI.UpdateLastActivity(e.ctx, sb.Id).Execute()
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond)
	}
	st, _ = e.state(sb.Id)
	assert.Equal(t, apiclient.SANDBOXSTATE_STARTED, st, "last-activity postpones auto-stop")

	// Requests with X-Daytona-Skip-Last-Activity-Update do not count.
	stoppedAt := time.Now()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, _ := e.raw(http.MethodGet, "/toolbox/"+sb.Id+"/work-dir", nil, map[string]string{"X-Daytona-Skip-Last-Activity-Update": "true"})
		if code != http.StatusOK {
			break // no longer started
		}
		require.True(t, time.Now().Before(deadline), "auto-stop never happened")
		time.Sleep(20 * time.Millisecond)
	}
	assert.GreaterOrEqual(t, time.Since(stoppedAt), 300*time.Millisecond, "not before the interval")
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STOPPED)

	// autoStopInterval 0 disables it (it has been idle >1.5s by now).
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
		e.waitState(id, apiclient.SANDBOXSTATE_STOPPED)
	}
	stopped := time.Now()
	e.waitState(sb.Id, "")
	assert.GreaterOrEqual(t, time.Since(stopped), 200*time.Millisecond)
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
	_, _, err := e.api.SandboxAPI.StopSandbox(e.ctx, arch.Id).Execute()
	require.NoError(t, err)
	e.waitState(arch.Id, apiclient.SANDBOXSTATE_ARCHIVED)
}
