// Package daytona is threadbox's gateway to Daytona: the control plane (sandboxes, volumes,
// snapshots) and the in-sandbox toolbox (exec, files).
//
// It is built on Daytona's generated OpenAPI clients (api-client-go and toolbox-api-client-go
// v0.190.0) because the official Go SDK module is not obtainable; the bits of SDK behaviour
// threadbox relies on (waiting by polling, error mapping, streaming transfers, get-or-create)
// are re-implemented here. Errors are typed (see Error and the Err* kinds) so callers, in
// particular Temporal activities, decide about retries with errors.Is and Retryable instead of
// matching strings. The gateway itself never retries: Temporal does.
package daytona

import (
	"io"
	"time"
)

// SandboxState is Daytona's sandbox state string as returned in the Sandbox DTO. Kept as a
// string type (not an enum of our own) so states added by newer Daytona versions pass through.
type SandboxState string

// Daytona sandbox states (SandboxState enum of API v0.190.0).
const (
	StateCreating         SandboxState = "creating"
	StateRestoring        SandboxState = "restoring"
	StateDestroyed        SandboxState = "destroyed"
	StateDestroying       SandboxState = "destroying"
	StateStarted          SandboxState = "started"
	StateStopped          SandboxState = "stopped"
	StateStarting         SandboxState = "starting"
	StateStopping         SandboxState = "stopping"
	StateError            SandboxState = "error"
	StateBuildFailed      SandboxState = "build_failed"
	StatePendingBuild     SandboxState = "pending_build"
	StateBuildingSnapshot SandboxState = "building_snapshot"
	StateUnknown          SandboxState = "unknown"
	StatePullingSnapshot  SandboxState = "pulling_snapshot"
	StateArchived         SandboxState = "archived"
	StateArchiving        SandboxState = "archiving"
	StateResizing         SandboxState = "resizing"
	StateSnapshotting     SandboxState = "snapshotting"
	StateForking          SandboxState = "forking"
	StatePausing          SandboxState = "pausing"
	StatePaused           SandboxState = "paused"
	StateResuming         SandboxState = "resuming"
)

// Failed reports whether the state is terminal failure (error or build_failed), in which a
// sandbox will never become started on its own.
func (s SandboxState) Failed() bool { return s == StateError || s == StateBuildFailed }

// Label keys threadbox puts on every sandbox it creates, so leaked sandboxes can be found by
// label and attributed to a user and thread.
const (
	LabelManagedBy      = "managed-by"
	LabelManagedByValue = "threadbox"
	LabelKind           = "kind"
	LabelUser           = "user"
	LabelThread         = "thread"
)

// Sandbox is threadbox's view of a Daytona sandbox: only the fields the orchestrator needs.
type Sandbox struct {
	ID    string
	Name  string
	State SandboxState
	// DesiredState is where Daytona is taking the sandbox (its desiredState: started,
	// stopped, archived, destroyed, ...; the values are state names). A start from archived
	// shows State archived with DesiredState started until Daytona has restored it.
	DesiredState SandboxState
	// Recoverable is set on a sandbox in state error that Daytona can repair in place
	// (RecoverSandbox), keeping its files; other errored sandboxes can only be deleted.
	Recoverable bool
	Snapshot    string
	Labels      map[string]string
	// ToolboxURL is toolboxProxyUrl + "/" + ID: the base of every toolbox call.
	ToolboxURL  string
	ErrorReason string
	CreatedAt   time.Time
	// LastActivityAt is Daytona's clock for auto-stop/auto-delete.
	LastActivityAt     time.Time
	AutoStopMinutes    int
	AutoDeleteMinutes  int
	AutoArchiveMinutes int
}

// VolumeMount mounts a Daytona volume (by id or name) into a sandbox at creation time.
// Subpath, when set, restricts the mount to that S3 prefix (the shared-volume strategy).
type VolumeMount struct {
	VolumeID  string
	MountPath string
	Subpath   string
}

// CreateSandboxParams describes a sandbox to find or create.
//
// AutoStopMinutes and AutoDeleteMinutes are Daytona-side backstops (the workflow is the
// authority). Rule: a value > 0 is sent as is; 0 means "leave Daytona's default" (auto-stop
// 15 min, auto-delete disabled) and is NOT sent, because Daytona reads 0 as "disable
// auto-stop" / "ephemeral". To explicitly disable, pass a negative value: auto-stop < 0 sends
// 0 (disabled), auto-delete < 0 sends -1 (disabled).
type CreateSandboxParams struct {
	Name              string
	Snapshot          string
	Labels            map[string]string
	Env               map[string]string
	Volumes           []VolumeMount
	AutoStopMinutes   int
	AutoDeleteMinutes int
	// AutoArchiveMinutes archives the sandbox after it has been stopped this long (> 0);
	// 0 leaves Daytona's default, 7 days. An archived sandbox stops using disk quota (and
	// being billed for it) but takes minutes to start again.
	AutoArchiveMinutes int
}

// ListOrder is the order in which ListSandboxes asks Daytona to list.
type ListOrder int

const (
	// ByLastActivity is Daytona's default: most recent activity first. Activity moves a
	// sandbox to the front while a caller walks the pages, so a walk can miss a sandbox or
	// see one twice.
	ByLastActivity ListOrder = iota
	// OldestFirst is creation time, oldest first: activity does not change it and new
	// sandboxes only extend it, so a walk over all pages sees every sandbox once.
	OldestFirst
)

// Volume is a Daytona volume (an S3 bucket mounted into sandboxes).
type Volume struct {
	ID    string
	Name  string
	State string
}

// Snapshot is a Daytona snapshot (a sandbox template image).
type Snapshot struct {
	ID          string
	Name        string
	State       string
	ImageName   string
	ErrorReason string
	CreatedAt   time.Time
}

// Snapshot states (SnapshotState enum).
const (
	SnapshotBuilding    = "building"
	SnapshotPending     = "pending"
	SnapshotPulling     = "pulling"
	SnapshotActive      = "active"
	SnapshotInactive    = "inactive"
	SnapshotError       = "error"
	SnapshotBuildFailed = "build_failed"
	SnapshotRemoving    = "removing"
)

// Volume states (VolumeState enum).
const (
	VolumeReady         = "ready"
	VolumeError         = "error"
	VolumePendingCreate = "pending_create"
	VolumeCreating      = "creating"
)

// CreateSnapshotParams describes a snapshot to build. Exactly one of ImageName (with an
// explicit, non-latest tag) or Dockerfile (content, sent as buildInfo) must be set.
type CreateSnapshotParams struct {
	Name       string
	ImageName  string
	Dockerfile string
	Entrypoint []string
	// CPU, Memory and Disk (GB) are optional resources; 0 means Daytona's default.
	CPU, Memory, Disk int
}

// ExecRequest is one shell command run in a sandbox.
type ExecRequest struct {
	Command string
	Cwd     string
	Env     map[string]string
	// Timeout is rounded up to whole seconds; 0 means no server-side timeout (only ctx).
	Timeout time.Duration
	// MaxOutput keeps at most this many bytes of the output (cut at a UTF-8 boundary);
	// 0 keeps everything. The rest is read and dropped, never held.
	MaxOutput int
}

// ExecResult is a finished command: exit code and combined stdout+stderr.
type ExecResult struct {
	ExitCode int
	Output   string
	// Truncated reports that output beyond ExecRequest.MaxOutput was dropped.
	Truncated bool
}

// FileInfo describes one file or directory inside a sandbox.
type FileInfo struct {
	Name    string
	Size    int64
	IsDir   bool
	ModTime time.Time
	Mode    string
}

// UploadItem is one file of a batch upload; Body is streamed, never buffered.
type UploadItem struct {
	Path string
	Body io.Reader
}

// UploadOutcome is the per-item result of UploadBatch; Err is nil when the file was written.
type UploadOutcome struct {
	Path  string
	Bytes int64
	Err   error
}
