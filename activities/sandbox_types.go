package activities

import "time"

// Entity kinds, as the ledger (lifecycle_events.entity_kind) and the workflows
// name them. They are plain strings here because workflows import activities,
// not the other way round.
const (
	EntityThread = "thread"
	EntityFiles  = "files"
)

// Sandbox types as stored in sandboxes.sandbox_type and put in the Daytona
// "kind" label: a thread owns an agent sandbox, a files session a files one.
const (
	SandboxTypeAgent = "agent"
	SandboxTypeFiles = "files"
)

// VolumeMountPath is where every threadbox sandbox sees its user's volume.
const VolumeMountPath = "/home/daytona/volume"

// ErrTypeSandboxGone is the ApplicationError type of a sandbox that Daytona no
// longer has (or that broke beyond starting): the workflow answers by creating
// the next generation instead of retrying.
const ErrTypeSandboxGone = "SandboxGone"

// EnsureSandboxInput asks for the entity's sandbox of a given generation.
type EnsureSandboxInput struct {
	Kind     string // EntityThread or EntityFiles
	UserID   string
	ThreadID string // empty for files sessions
	// Generation is the generation the workflow wants; the activity may pick a
	// higher one when that name already belonged to a destroyed sandbox.
	Generation int
	// AutoStop and AutoDelete are the workflow's intervals; Daytona's backstops
	// are derived from them. AutoDelete 0 means "never" (files sessions).
	AutoStop   time.Duration
	AutoDelete time.Duration
}

// SandboxRef names an existing sandbox of an entity.
type SandboxRef struct {
	Kind       string
	UserID     string
	ThreadID   string
	SandboxID  string
	Generation int
}

// SandboxInfo is what the workflow keeps about a running sandbox.
type SandboxInfo struct {
	SandboxID  string
	Name       string
	ToolboxURL string
	Snapshot   string
	Generation int
}

// StopResult reports how a stop ended.
type StopResult struct {
	// Gone is true when Daytona no longer has the sandbox (its own backstop
	// deleted it): the entity has no sandbox any more.
	Gone bool
}
