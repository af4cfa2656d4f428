package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/entity"
)

// registerEntities registers the thread and files-session workflows (one
// implementation, two names) and the orphan reconciler.
func registerEntities(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(ThreadWorkflow, workflow.RegisterOptions{Name: entity.ThreadWorkflowName})
	r.RegisterWorkflowWithOptions(FilesWorkflow, workflow.RegisterOptions{Name: entity.FilesWorkflowName})
	r.RegisterWorkflowWithOptions(ReconcileWorkflow, workflow.RegisterOptions{Name: ReconcileWorkflowName})
}
