package workflows_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/threadbox/threadbox/workflows"
)

// TestReplayHistories replays every history recorded from real runs
// (TestRecordHistories) against the current code: a change that alters the
// commands of an existing history without workflow.GetVersion fails here.
// Every registered workflow type must have at least one history.
func TestReplayHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories in testdata/")
	covered := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			covered[workflowType(t, f)] = true
			r := worker.NewWorkflowReplayer()
			workflows.Register(r)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
	reg := &typeNames{}
	workflows.Register(reg)
	var missing []string
	for _, name := range reg.names {
		if !covered[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "workflow types without a recorded history in testdata/")
}

// workflowType is the type of the workflow a history file records.
func workflowType(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var h historypb.History
	require.NoError(t, protojson.Unmarshal(b, &h))
	require.NotEmpty(t, h.Events)
	started := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
	require.NotNil(t, started, "%s does not begin with WorkflowExecutionStarted", file)
	return started.GetWorkflowType().GetName()
}

// typeNames collects the names workflows are registered under.
type typeNames struct {
	registry
	names []string
}

func (n *typeNames) RegisterWorkflowWithOptions(_ any, o workflow.RegisterOptions) {
	n.names = append(n.names, o.Name)
}
