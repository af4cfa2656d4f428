package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/workflows"
)

// TestReplayEntityHistories replays histories recorded from real runs
// (TestRecordEntityHistories) against the current code: a change that alters
// the commands of existing histories without workflow.GetVersion fails here.
func TestReplayEntityHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*_lifecycle.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories in testdata/")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(workflows.ThreadWorkflow, workflow.RegisterOptions{Name: entity.ThreadWorkflowName})
			r.RegisterWorkflowWithOptions(workflows.FilesWorkflow, workflow.RegisterOptions{Name: entity.FilesWorkflowName})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
