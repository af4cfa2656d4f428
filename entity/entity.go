// Package entity is the vocabulary shared by everything that talks about a
// sandbox entity — a thread's agent sandbox or a user's files session: the
// kinds, the Temporal workflow ids and type names, the update/signal/query
// names and their payloads, the error types the workflows fail with, and the
// paths every threadbox sandbox shares.
//
// It exists so that the API (which sends the messages), the workflows (which
// handle them) and the activities (which name and find the sandboxes) agree
// by construction: each name, id format and path is declared here once, and
// a test (internal/archtest) fails when another package spells one again.
// It imports nothing of threadbox.
//
// Payload types are carried in Temporal histories and across ContinueAsNew,
// and open entity workflows never end, so their JSON names are frozen with
// explicit tags: renaming a Go field must not rename what is on the wire.
package entity

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
)

// Kind distinguishes the two sandbox entity kinds. Its values are also the
// ledger's lifecycle_events.entity_kind.
type Kind string

const (
	// KindThread is a conversation thread's agent sandbox.
	KindThread Kind = "thread"
	// KindFiles is a user's files session: the sandbox serving WebDAV,
	// /v1/files and uploads over the user's volume.
	KindFiles Kind = "files"
)

// Sandbox types, as stored in sandboxes.sandbox_type and put in Daytona's
// "kind" label: a thread owns an agent sandbox, a files session a files one.
const (
	SandboxTypeAgent = "agent"
	SandboxTypeFiles = "files"
)

// SandboxType is the sandbox type an entity of kind k owns.
func (k Kind) SandboxType() string {
	if k == KindFiles {
		return SandboxTypeFiles
	}
	return SandboxTypeAgent
}

// KindOfSandboxType is the entity kind owning a sandbox of type t (ok false
// for types that belong to no entity, e.g. skill scratch sandboxes).
func KindOfSandboxType(t string) (Kind, bool) {
	switch t {
	case SandboxTypeAgent:
		return KindThread, true
	case SandboxTypeFiles:
		return KindFiles, true
	}
	return "", false
}

// Paths every threadbox sandbox shares.
const (
	// HomeDir is the sandbox user's home (Daytona runs commands as the
	// `daytona` user with this HOME); relative thread paths resolve here.
	HomeDir = "/home/daytona"
	// VolumeMountPath is where every sandbox of a user (agent and files)
	// mounts that user's volume.
	VolumeMountPath = HomeDir + "/volume"
	// SkillsDir holds the published skills baked into the active snapshot,
	// one folder per skill (docs/CONTRACT.md).
	SkillsDir = HomeDir + "/skills"
)

// Ref names one entity: a thread (KindThread, ThreadID set) or a user's
// files session (KindFiles, ThreadID empty).
type Ref struct {
	Kind     Kind
	UserID   string
	ThreadID string
}

// Thread is the ref of a user's thread.
func Thread(userID, threadID string) Ref {
	return Ref{Kind: KindThread, UserID: userID, ThreadID: threadID}
}

// Files is the ref of a user's files session.
func Files(userID string) Ref { return Ref{Kind: KindFiles, UserID: userID} }

// Workflow id prefixes; the ids are "thread:<user>:<thread>" and
// "files:<user>" (docs/CONTRACT.md promises them to operators).
const (
	threadIDPrefix = "thread:"
	filesIDPrefix  = "files:"
)

// WorkflowID is the entity's Temporal workflow id. Thread ids never contain
// ':' (the API's id pattern), so the last colon separates user and thread.
func (r Ref) WorkflowID() string {
	if r.Kind == KindFiles {
		return filesIDPrefix + r.UserID
	}
	return threadIDPrefix + r.UserID + ":" + r.ThreadID
}

// ParseWorkflowID is the inverse of Ref.WorkflowID.
func ParseWorkflowID(id string) (Ref, bool) {
	if user, ok := strings.CutPrefix(id, filesIDPrefix); ok && user != "" {
		return Files(user), true
	}
	if rest, ok := strings.CutPrefix(id, threadIDPrefix); ok {
		i := strings.LastIndexByte(rest, ':')
		if i > 0 && i < len(rest)-1 {
			return Thread(rest[:i], rest[i+1:]), true
		}
	}
	return Ref{}, false
}

// WorkflowName is the registered workflow type of the entity's kind.
func (k Kind) WorkflowName() string {
	if k == KindFiles {
		return FilesWorkflowName
	}
	return ThreadWorkflowName
}

// Workflow type names, registered explicitly so renaming a Go function never
// breaks running workflows.
const (
	ThreadWorkflowName = "ThreadWorkflow"
	FilesWorkflowName  = "FilesWorkflow"
)

// Message names of the entity workflows.
const (
	// UpdateEnsureRunning makes sure the sandbox runs and returns EnsureResult;
	// it is sent as Update-With-Start so the first use creates the workflow.
	UpdateEnsureRunning = "ensure-running"
	// UpdateDelete destroys the sandbox and ends the workflow; the update
	// completes once the sandbox is destroyed.
	UpdateDelete = "delete"
	// SignalDelete asks for the same as UpdateDelete (payload DeleteRequest)
	// without taking one of Temporal's ten in-flight update slots of the
	// workflow, so a delete gets through even while slow ensures hold them
	// all. Send it with Signal-With-Start, and wait for the workflow to
	// close when the caller needs the sandbox gone.
	SignalDelete = "delete"
	// SignalTouch records a use (debounced by the API).
	SignalTouch = "touch"
	// SignalReleaseLease releases a lease early.
	SignalReleaseLease = "release-lease"
	// QueryState returns State.
	QueryState = "state"
)

// Search attributes of the entity workflows, shown and filterable in the
// Temporal UI (docs/CONTRACT.md names them).
var (
	AttrThreadID     = temporal.NewSearchAttributeKeyKeyword("ThreadId")
	AttrUserID       = temporal.NewSearchAttributeKeyKeyword("UserId")
	AttrSandboxID    = temporal.NewSearchAttributeKeyKeyword("SandboxId")
	AttrSandboxState = temporal.NewSearchAttributeKeyKeyword("SandboxState")
)

// Phase is an entity's sandbox state as the contract names it.
type Phase string

const (
	PhaseCreating Phase = "creating"
	PhaseRunning  Phase = "running"
	PhaseStopped  Phase = "stopped"
	PhaseDeleted  Phase = "deleted" // sandbox auto-deleted (thread lives on) or thread deleted
	PhaseError    Phase = "error"
)

// Config is fixed at start and carried across ContinueAsNew, so a config
// change applies to new entities (deterministic replay).
type Config struct {
	AutoStop   time.Duration `json:"AutoStop"`   // stop after this long without use
	AutoDelete time.Duration `json:"AutoDelete"` // delete this long after stop; 0 = never (files)
}

// Input starts an entity workflow.
type Input struct {
	Kind     Kind   `json:"Kind"`
	UserID   string `json:"UserID"`
	ThreadID string `json:"ThreadID"` // empty for files sessions
	Config   Config `json:"Config"`
	// State is set only by ContinueAsNew.
	State *State `json:"State"`
}

// Ref is the entity the input starts.
func (in Input) Ref() Ref { return Ref{Kind: in.Kind, UserID: in.UserID, ThreadID: in.ThreadID} }

// MaxLeaseTTL bounds one lease, asked by a client or taken for a long use;
// longer work renews it. The API refuses longer leases before asking.
const MaxLeaseTTL = 24 * time.Hour

// MaxEnsureWait bounds how long an ensure-running waits for the sandbox: a
// slow Daytona must not hold the workflow's ten in-flight update slots after
// the caller gave up. The caller then gets ErrTypeSandboxUnavailable ("still
// being brought up; retry") and the create goes on; callers should wait a
// little longer than this for the answer.
const MaxEnsureWait = 90 * time.Second

// LeaseRequest asks for the sandbox to be kept running for TTL.
type LeaseRequest struct {
	ID  string        `json:"ID"`
	TTL time.Duration `json:"TTL"`
}

// EnsureRequest is the argument of UpdateEnsureRunning.
type EnsureRequest struct {
	RequestID string        `json:"RequestID"` // idempotency key (also the update id)
	Lease     *LeaseRequest `json:"Lease"`     // optional
	UsedAt    time.Time     `json:"UsedAt"`    // when the API saw the use
	// SuspectSandboxID is a sandbox the caller found not running although
	// the workflow believes it runs (Daytona's backstop or an operator acted
	// behind its back); the workflow starts it again, or recreates it when it
	// is gone, before answering.
	SuspectSandboxID string `json:"SuspectSandboxID"`
}

// EnsureResult tells the API where the sandbox is and how long it is sure to
// stay up, so it can skip Temporal on the hot path until then.
type EnsureResult struct {
	SandboxID    string    `json:"SandboxID"`
	ToolboxURL   string    `json:"ToolboxURL"`
	Snapshot     string    `json:"Snapshot"`
	Generation   int       `json:"Generation"`
	RunningUntil time.Time `json:"RunningUntil"` // earliest moment the workflow could stop the sandbox
	Created      bool      `json:"Created"`      // this call created a new sandbox (first use or recreate)
	// LastUseAt and AutoStopAt are the entity's last use and stop deadline
	// (leases included) as the workflow held them when it answered, so the
	// API can answer a create without a query (a worker task of its own).
	// Zero from workers older than these fields.
	LastUseAt  time.Time `json:"LastUseAt"`
	AutoStopAt time.Time `json:"AutoStopAt"`
}

// TouchSignal records uses seen by the API up to At.
type TouchSignal struct {
	At time.Time `json:"At"`
}

// ReleaseLeaseSignal ends a lease before its expiry. Releasing a live lease
// is a use (now); UsedAt, when set, is also a use (like TouchSignal.At) even
// if the lease already expired, so the API reports the end of the work it
// covered with this one signal instead of a touch and a release. Payloads
// without it (zero) record no use beyond the release of a live lease.
type ReleaseLeaseSignal struct {
	LeaseID string    `json:"LeaseID"`
	UsedAt  time.Time `json:"UsedAt"`
}

// DeleteRequest is the argument of UpdateDelete.
type DeleteRequest struct {
	RequestID string `json:"RequestID"`
	Cause     string `json:"Cause"`
}

// State is the whole state of an entity: absolute times only, so
// ContinueAsNew never stretches a deadline. It is also the answer of
// QueryState.
type State struct {
	Phase        Phase                `json:"Phase"`
	SandboxID    string               `json:"SandboxID"`
	ToolboxURL   string               `json:"ToolboxURL"`
	Snapshot     string               `json:"Snapshot"`
	Generation   int                  `json:"Generation"`
	LastUseAt    time.Time            `json:"LastUseAt"`
	StoppedAt    time.Time            `json:"StoppedAt"`
	Leases       map[string]time.Time `json:"Leases"`       // lease id → expiry
	LeasedUntil  time.Time            `json:"LeasedUntil"`  // latest expiry of a lease that ended by itself: the stop deadline never comes before it
	AutoStopAt   time.Time            `json:"AutoStopAt"`   // zero unless running
	AutoDeleteAt time.Time            `json:"AutoDeleteAt"` // zero unless stopped and AutoDelete > 0
	Error        string               `json:"Error"`
	// ErrorType is the failure type of the last failed bring-up when it
	// names a condition the user should be told as such (ErrTypeOrgCapacity,
	// ErrTypeOrgSuspended, ErrTypeVolumeQuota); empty otherwise.
	ErrorType string `json:"ErrorType"`
}

// Error types (temporal.ApplicationError.Type) the entity workflows and their
// activities fail with, so callers map them without matching messages.
const (
	// ErrTypeEntityDeleted: the thread was deleted while the request waited;
	// a new Update-With-Start after the run ended starts a fresh run.
	ErrTypeEntityDeleted = "EntityDeleted"
	// ErrTypeEntityDeleting: the update was refused because this run is
	// deleting its sandbox; a retry reaches the next run.
	ErrTypeEntityDeleting = "EntityDeleting"
	// ErrTypeSandboxUnavailable: bringing the sandbox up failed (Daytona
	// refused or stayed down through the retries); State.Error has the
	// reason and the next ensure-running tries again.
	ErrTypeSandboxUnavailable = "SandboxUnavailable"
	// ErrTypeSandboxGone: an activity found that Daytona no longer has the
	// sandbox (or it broke beyond starting); the workflow answers by
	// creating the next generation instead of retrying.
	ErrTypeSandboxGone = "SandboxGone"
	// ErrTypeOrgCapacity: Daytona refused a create or start because the
	// organisation's CPU, memory or disk limit is reached (stopped sandboxes
	// count toward disk). Other threads must stop, or the operator raise it.
	ErrTypeOrgCapacity = "DaytonaOrgCapacity"
	// ErrTypeOrgSuspended: Daytona suspended the organisation; only the
	// operator can act.
	ErrTypeOrgSuspended = "DaytonaOrgSuspended"
	// ErrTypeVolumeQuota: the organisation has as many volumes as Daytona
	// allows (100 by default); the operator must raise it or use the shared
	// volume strategy.
	ErrTypeVolumeQuota = "DaytonaVolumeQuota"
)
