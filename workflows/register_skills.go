package workflows

import (
	"go.temporal.io/sdk/workflow"

	"go.temporal.io/sdk/worker"
)

// registerSkills registers the skill validation, snapshot build and
// activation workflows under explicit names, so renaming a Go function never
// breaks running workflows.
func registerSkills(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(SkillValidationWorkflow, workflow.RegisterOptions{Name: SkillValidationWorkflowName})
	r.RegisterWorkflowWithOptions(SnapshotBuilderWorkflow, workflow.RegisterOptions{Name: SnapshotBuilderWorkflowName})
	r.RegisterWorkflowWithOptions(SnapshotBuildWorkflow, workflow.RegisterOptions{Name: SnapshotBuildWorkflowName})
	r.RegisterWorkflowWithOptions(SnapshotActivationWorkflow, workflow.RegisterOptions{Name: SnapshotActivationWorkflowName})
}
