package activities

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/entity"
)

func TestTemporalErrorRetriesOnlyTransientDaytonaFailures(t *testing.T) {
	cases := []struct {
		kind      error
		status    int
		retryable bool
		typ       string
	}{
		{daytona.ErrNotFound, 404, false, "DaytonaNotFound"},
		{daytona.ErrBadRequest, 403, false, "DaytonaBadRequest"},
		{daytona.ErrInvalidState, 400, false, "DaytonaInvalidState"},
		{daytona.ErrConflict, 409, true, "DaytonaConflict"},
		{daytona.ErrRateLimited, 429, true, "DaytonaRateLimited"},
		{daytona.ErrUnavailable, 503, true, "DaytonaUnavailable"},
		{daytona.ErrTimeout, 408, true, "DaytonaTimeout"},
	}
	for _, c := range cases {
		err := temporalError("op", &daytona.Error{Kind: c.kind, Status: c.status, Message: "m"})
		var ae *temporal.ApplicationError
		require.ErrorAs(t, err, &ae, c.typ)
		assert.Equal(t, c.typ, ae.Type())
		assert.Equal(t, !c.retryable, ae.NonRetryable(), c.typ)
	}

	limited := temporalError("op", &daytona.Error{Kind: daytona.ErrRateLimited, Status: 429, RetryAfter: 7 * time.Second})
	var ae *temporal.ApplicationError
	require.ErrorAs(t, limited, &ae)
	assert.Equal(t, 7*time.Second, ae.NextRetryDelay(), "Retry-After is honoured")

	plain := temporalError("op", errors.New("db down"))
	assert.False(t, errors.As(plain, &ae), "non-Daytona errors stay plain (retried by policy)")
	assert.Nil(t, temporalError("op", nil))
}

func TestBackstopIsAtLeastAMinuteLonger(t *testing.T) {
	assert.Equal(t, 16, backstopMinutes(15*time.Minute))
	assert.Equal(t, 2, backstopMinutes(30*time.Second))
	assert.Equal(t, 3, backstopMinutes(time.Minute+time.Second))
	assert.Equal(t, 0, backstopMinutes(0))
}

func TestEntityKeyKeepsUserAndThreadApart(t *testing.T) {
	a := daytona.SandboxName(entity.SandboxTypeAgent, entityKey(entity.KindThread, "a-b", "c"), 1)
	b := daytona.SandboxName(entity.SandboxTypeAgent, entityKey(entity.KindThread, "a", "b-c"), 1)
	c := daytona.SandboxName(entity.SandboxTypeAgent, entityKey(entity.KindThread, "a/b", "c"), 1)
	d := daytona.SandboxName(entity.SandboxTypeAgent, entityKey(entity.KindThread, "a", "b/c"), 1)
	assert.Len(t, map[string]bool{a: true, b: true, c: true, d: true}, 4)
}
