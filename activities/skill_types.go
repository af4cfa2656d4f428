package activities

import "time"

// SandboxTypeScratch marks short-lived sandboxes of the skills workflows
// (validation and snapshot builds) in the sandboxes table and in their
// Daytona "kind" label; the orphan reconciler leaves that kind alone.
const SandboxTypeScratch = "scratch"

// ValidateSkillInput names the stored skill version to validate and the key of
// its scratch sandbox (deterministic, so a retry finds the same sandbox).
type ValidateSkillInput struct {
	SkillID    string
	ScratchKey string
	Actor      string
}

// ValidateSkillResult is the verdict and the log an admin reads.
type ValidateSkillResult struct {
	Passed    bool
	Log       string
	SandboxID string
}

// FinishSkillValidationInput records a verdict.
type FinishSkillValidationInput struct {
	SkillID string
	Passed  bool
	Log     string
}

// ScratchSandboxInput names a scratch sandbox by its key.
type ScratchSandboxInput struct {
	ScratchKey string
}

// StartSnapshotBuildInput allocates the row of a new snapshot version.
type StartSnapshotBuildInput struct {
	Version     int
	DaytonaName string
	Actor       string
	WorkflowID  string
}

// StartSnapshotBuildResult is the version being built and what it holds.
type StartSnapshotBuildResult struct {
	SnapshotID  int64
	Version     int
	DaytonaName string
	SkillIDs    []string
	SkillNames  []string
	// BuiltFromID is the active version when the build started (nil = base).
	BuiltFromID *int64
}

// BuildSnapshotImageInput builds a version's Daytona snapshot.
type BuildSnapshotImageInput struct {
	SnapshotID  int64
	DaytonaName string
	ScratchKey  string
	SkillIDs    []string
}

// BuildSnapshotImageResult is the Daytona snapshot that became active.
type BuildSnapshotImageResult struct {
	DaytonaSnapshotID string
	SandboxID         string
}

// FailSnapshotBuildInput marks a version failed.
type FailSnapshotBuildInput struct {
	SnapshotID int64
	Error      string
}

// PromoteSnapshotInput makes a freshly built version active if the pointer
// still is where it was when the build started.
type PromoteSnapshotInput struct {
	SnapshotID        int64
	DaytonaSnapshotID string
	ExpectedFromID    *int64
	Actor             string
	Reason            string
	WorkflowID        string
}

// PromoteSnapshotResult says whether the version became active, and why not.
type PromoteSnapshotResult struct {
	Activated bool
	FromID    *int64
	Reason    string
}

// EnsureSnapshotUsableInput names a version (0 = the base snapshot) whose
// Daytona snapshot must be active before the pointer moves to it.
type EnsureSnapshotUsableInput struct {
	SnapshotID int64
}

// ActivateSnapshotInput moves the pointer unconditionally (admin activation
// and rollback); SnapshotID 0 means the base snapshot.
type ActivateSnapshotInput struct {
	SnapshotID int64
	Actor      string
	Reason     string
	WorkflowID string
}

// ActivateSnapshotResult is the audit row written.
type ActivateSnapshotResult struct {
	FromID *int64
	ToID   *int64
	At     time.Time
}
