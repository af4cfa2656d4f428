package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// registerEntities registers the thread and files-session workflows (one
// implementation, two names) and the orphan reconciler.
func registerEntities(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(ThreadWorkflow, workflow.RegisterOptions{Name: ThreadWorkflowName})
	r.RegisterWorkflowWithOptions(FilesWorkflow, workflow.RegisterOptions{Name: FilesWorkflowName})
	r.RegisterWorkflowWithOptions(ReconcileWorkflow, workflow.RegisterOptions{Name: ReconcileWorkflowName})
}
