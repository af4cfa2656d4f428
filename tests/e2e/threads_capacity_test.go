package e2e_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/emulator"
	"github.com/threadbox/threadbox/internal/testenv"
)

// When Daytona refuses a sandbox because the organisation is out of
// capacity (its 400 "Total CPU limit exceeded"), suspended (403) or out of
// volumes, the user is told which, with a code of its own — not a generic
// "retry in 5 s" — and nothing else is disturbed.
func TestOrganisationLimitsReachTheUser(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	c := newTC(t, env, env.UserKey)
	status, _ := c.create("first")
	require.Equal(t, http.StatusCreated, status)

	env.Emulator.SetLimits(emulator.Limits{CPU: 1}) // the first sandbox holds the only CPU
	resp, body := c.call(http.MethodPost, "/v1/threads", map[string]string{"thread_id": "second"})
	requireErr(t, resp, body, http.StatusServiceUnavailable, "sandbox_capacity_exhausted")
	require.Equal(t, "60", resp.Header.Get("Retry-After"))
	require.Equal(t, 0, c.exec("first", "true").ExitCode, "the running thread is untouched")

	env.Emulator.SetLimits(emulator.Limits{Suspended: true})
	resp, body = c.call(http.MethodPost, "/v1/threads", map[string]string{"thread_id": "third"})
	requireErr(t, resp, body, http.StatusServiceUnavailable, "sandbox_provider_suspended")

	env.Emulator.SetLimits(emulator.Limits{})
	status, _ = c.create("second")
	require.Equal(t, http.StatusOK, status, "once capacity is back the thread comes up")
}
