package workflows

import (
	"go.temporal.io/sdk/worker"
)

// Register registers every workflow of threadbox with a worker. Each area adds
// its workflows in its own registerX function.
func Register(r worker.WorkflowRegistry) {
	registerEntities(r)
	registerSkills(r)
}
