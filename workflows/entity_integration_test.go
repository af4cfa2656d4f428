package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/entity"
)

// TestEntityConcurrentEnsuresMakeOneSandbox: many API requests racing to use
// a new thread (Update-With-Start on a real Temporal server, real activities
// against the emulator) get one workflow and one sandbox.
func TestEntityConcurrentEnsuresMakeOneSandbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRecorder(t)
	in := entity.Input{Kind: entity.KindThread, UserID: "race-user", ThreadID: "race",
		Config: entity.Config{AutoStop: time.Minute, AutoDelete: time.Minute}}
	id := entity.Thread(in.UserID, in.ThreadID).WorkflowID()

	const n = 8
	results := make([]entity.EnsureResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.ensure(ctx, id, entity.ThreadWorkflowName, in, nil)
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

	v, err := r.c.QueryWorkflow(ctx, id, "", entity.QueryState)
	require.NoError(t, err)
	var st entity.State
	require.NoError(t, v.Get(&st))
	assert.Equal(t, entity.PhaseRunning, st.Phase)
	assert.Equal(t, results[0].SandboxID, st.SandboxID)
	r.delete(ctx, id)
	_, err = r.gw.GetSandbox(ctx, results[0].SandboxID)
	assert.ErrorIs(t, err, daytona.ErrNotFound, "delete destroys the sandbox")
}
