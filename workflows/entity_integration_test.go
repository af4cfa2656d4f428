package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/workflows"
)

// TestEntityConcurrentEnsuresMakeOneSandbox: many API requests racing to use
// a new thread (Update-With-Start on a real Temporal server, real activities
// against the emulator) get one workflow and one sandbox.
func TestEntityConcurrentEnsuresMakeOneSandbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRecorder(t)
	in := workflows.EntityInput{Kind: workflows.KindThread, UserID: "race-user", ThreadID: "race",
		Config: workflows.EntityConfig{AutoStop: time.Minute, AutoDelete: time.Minute}}
	id := workflows.ThreadWorkflowID(in.UserID, in.ThreadID)

	const n = 8
	results := make([]workflows.EnsureResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.ensure(ctx, id, workflows.ThreadWorkflowName, in, nil)
		}()
	}
	wg.Wait()
	created := 0
	for _, res := range results {
		assert.Equal(t, results[0].SandboxID, res.SandboxID)
		if res.Created {
			created++
		}
	}
	assert.GreaterOrEqual(t, created, 1)
	list, err := r.gw.ListSandboxes(ctx, map[string]string{daytona.LabelThread: "race"})
	require.NoError(t, err)
	require.Len(t, list, 1, "one thread, one sandbox")

	v, err := r.c.QueryWorkflow(ctx, id, "", workflows.QueryState)
	require.NoError(t, err)
	var st workflows.EntityState
	require.NoError(t, v.Get(&st))
	assert.Equal(t, workflows.PhaseRunning, st.Phase)
	assert.Equal(t, results[0].SandboxID, st.SandboxID)
	r.delete(ctx, id)
	_, err = r.gw.GetSandbox(ctx, results[0].SandboxID)
	assert.ErrorIs(t, err, daytona.ErrNotFound, "delete destroys the sandbox")
}
