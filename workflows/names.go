package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
)

// Workflow type names are registered explicitly so renaming a Go function never
// breaks running workflows.
const (
	ThreadWorkflowName = "ThreadWorkflow"
	FilesWorkflowName  = "FilesWorkflow"
)

// Message names of the sandbox entity workflows (threads and files sessions).
const (
	// UpdateEnsureRunning makes sure the sandbox runs and returns EnsureResult;
	// it is sent as Update-With-Start so the first use creates the workflow.
	UpdateEnsureRunning = "ensure-running"
	// UpdateDelete destroys the sandbox and ends the workflow.
	UpdateDelete = "delete"
	// SignalTouch records a use (debounced by the API).
	SignalTouch = "touch"
	// SignalReleaseLease releases a lease early.
	SignalReleaseLease = "release-lease"
	// QueryState returns EntityState.
	QueryState = "state"
)

// ThreadWorkflowID is the id of a thread's workflow; thread ids are scoped to
// their user.
func ThreadWorkflowID(userID, threadID string) string { return "thread:" + userID + ":" + threadID }

// FilesWorkflowID is the id of a user's files-session workflow.
func FilesWorkflowID(userID string) string { return "files:" + userID }

// Search attributes shown and filterable in the Temporal UI.
var (
	AttrThreadID     = temporal.NewSearchAttributeKeyKeyword("ThreadId")
	AttrUserID       = temporal.NewSearchAttributeKeyKeyword("UserId")
	AttrSandboxID    = temporal.NewSearchAttributeKeyKeyword("SandboxId")
	AttrSandboxState = temporal.NewSearchAttributeKeyKeyword("SandboxState")
)

// SearchAttributeNames are the custom attributes a Temporal namespace must
// have registered (threadbox dev registers them on its dev server).
var SearchAttributeNames = []string{"ThreadId", "UserId", "SandboxId", "SandboxState", "SkillName", "SnapshotVersion"}

// Phase is an entity's sandbox state as the contract names it.
type Phase string

const (
	PhaseCreating Phase = "creating"
	PhaseRunning  Phase = "running"
	PhaseStopped  Phase = "stopped"
	PhaseDeleted  Phase = "deleted" // sandbox auto-deleted (thread lives on) or thread deleted
	PhaseError    Phase = "error"
)

// Kind distinguishes the two sandbox entity kinds.
type Kind string

const (
	KindThread Kind = "thread"
	KindFiles  Kind = "files"
)

// EntityConfig is fixed at start and carried across ContinueAsNew, so a config
// change applies to new entities (deterministic replay).
type EntityConfig struct {
	AutoStop   time.Duration // stop after this long without use
	AutoDelete time.Duration // delete this long after stop; 0 = never (files)
}

// EntityInput starts a sandbox entity workflow.
type EntityInput struct {
	Kind     Kind
	UserID   string
	ThreadID string // empty for files sessions
	Config   EntityConfig
	// State is set only by ContinueAsNew.
	State *EntityState
}

// LeaseRequest asks for the sandbox to be kept running for TTL.
type LeaseRequest struct {
	ID  string
	TTL time.Duration
}

// EnsureRequest is the argument of UpdateEnsureRunning.
type EnsureRequest struct {
	RequestID string        // idempotency key (also the update id)
	Lease     *LeaseRequest // optional
	UsedAt    time.Time     // when the API saw the use
	// SuspectSandboxID is a sandbox the caller found not running although
	// the workflow believes it runs (Daytona's backstop or an operator acted
	// behind its back); the workflow starts it again, or recreates it when it
	// is gone, before answering.
	SuspectSandboxID string
}

// EnsureResult tells the API where the sandbox is and how long it is sure to
// stay up, so it can skip Temporal on the hot path until then.
type EnsureResult struct {
	SandboxID    string
	ToolboxURL   string
	Snapshot     string
	Generation   int
	RunningUntil time.Time // earliest moment the workflow could stop the sandbox
	Created      bool      // this call created a new sandbox (first use or recreate)
}

// TouchSignal records uses seen by the API up to At.
type TouchSignal struct {
	At time.Time
}

// ReleaseLeaseSignal ends a lease before its expiry.
type ReleaseLeaseSignal struct {
	LeaseID string
}

// DeleteRequest is the argument of UpdateDelete.
type DeleteRequest struct {
	RequestID string
	Cause     string
}

// EntityState is the whole state of a sandbox entity: absolute times only, so
// ContinueAsNew never stretches a deadline.
type EntityState struct {
	Phase        Phase
	SandboxID    string
	ToolboxURL   string
	Snapshot     string
	Generation   int
	LastUseAt    time.Time
	StoppedAt    time.Time
	Leases       map[string]time.Time // lease id → expiry
	AutoStopAt   time.Time            // zero unless running
	AutoDeleteAt time.Time            // zero unless stopped and AutoDelete > 0
	Error        string
}

// Error types (temporal.ApplicationError.Type) the entity updates fail with,
// so the API can map them without matching messages.
const (
	// ErrTypeEntityDeleted: the thread was deleted while the request waited;
	// a new UwS after the run ended starts a fresh run.
	ErrTypeEntityDeleted = "EntityDeleted"
	// ErrTypeEntityDeleting: the update was refused because this run is
	// deleting its sandbox; a retry reaches the next run.
	ErrTypeEntityDeleting = "EntityDeleting"
	// ErrTypeSandboxUnavailable: bringing the sandbox up failed (Daytona
	// refused or stayed down through the retries); EntityState.Error has the
	// reason and the next ensure-running tries again.
	ErrTypeSandboxUnavailable = "SandboxUnavailable"
)

// Thread rows (table threads) written by the thread workflow: state mirrors
// EntityState.Phase, except that an auto-deleted sandbox leaves the thread
// "stopped" with no sandbox_id (the thread lives on; its next use creates
// generation+1), and "deleted" means only that the user deleted the thread.
