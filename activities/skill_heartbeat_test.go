package activities_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/emulator"
	st "github.com/threadbox/threadbox/skills/skilltest"
)

// TestValidateSkillHeartbeatsWhileTheScratchSandboxIsCreated: the workflow
// gives ValidateSkill a 30 s heartbeat timeout, and creating the scratch
// sandbox (a Daytona create that waits for "started") can take longer. The
// activity must heartbeat during the create, not only during check commands,
// or Temporal times it out (and cancellation never reaches it).
func TestValidateSkillHeartbeatsWhileTheScratchSandboxIsCreated(t *testing.T) {
	pool := newDB(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Long enough that the first heartbeat's bound (half of it) leaves a loaded
	// machine room for the activity's own start.
	const slowCreate = 5 * time.Second
	emu, err := emulator.New(context.Background(), emulator.Options{CronInterval: 100 * time.Millisecond,
		TransitionDelay: 50 * time.Millisecond, Faults: emulator.Faults{SlowCreate: slowCreate}, Logger: log})
	require.NoError(t, err)
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { srv.Close(); _ = emu.Close() })
	gw, err := daytona.New(daytona.Config{APIURL: srv.URL + "/api", APIKey: "k", PollInterval: 20 * time.Millisecond, Logger: log})
	require.NoError(t, err)
	a := activities.New(config.Config{}, pool, gw, log)
	e := &skillEnv{acts: a, q: a.Queries, gw: gw, pool: pool}
	id := e.addSkill(t, st.TarGz(st.Valid("nocheck", "")...), "validating")

	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a.Register(env)
	var mu sync.Mutex
	var beats []time.Time
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, _ converter.EncodedValues) {
		mu.Lock()
		beats = append(beats, time.Now())
		mu.Unlock()
	})
	start := time.Now()
	v, err := env.ExecuteActivity(activities.NameValidateSkill, activities.ValidateSkillInput{SkillID: id.String(), ScratchKey: "skill-nocheck-v1", Actor: "admin"})
	require.NoError(t, err)
	var res activities.ValidateSkillResult
	require.NoError(t, v.Get(&res))
	require.True(t, res.Passed, res.Log)
	require.GreaterOrEqual(t, time.Since(start), slowCreate)

	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, beats, "no heartbeat during a %s scratch create", slowCreate)
	require.Less(t, beats[0].Sub(start), slowCreate/2, "the first heartbeat must come while the sandbox is created")
	require.NoError(t, a.DeleteScratchSandbox(context.Background(), activities.ScratchSandboxInput{ScratchKey: "skill-nocheck-v1"}))
}
