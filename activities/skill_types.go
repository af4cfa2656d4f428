package activities

import "time"

// SandboxTypeScratch marks short-lived sandboxes of the skills workflows
// (validation and snapshot builds) in the sandboxes table and in their
// Daytona "kind" label; the orphan reconciler leaves that kind alone.
const SandboxTypeScratch = "scratch"

// ValidateSkillInput names the stored skill version to validate and the key of
// its scratch sandbox (deterministic, so a retry finds the same sandbox).
type ValidateSkillInput struct {
	SkillID    string `json:"SkillID"`
	ScratchKey string `json:"ScratchKey"`
	Actor      string `json:"Actor"`
}

// ValidateSkillResult is the verdict and the log an admin reads.
type ValidateSkillResult struct {
	Passed    bool   `json:"Passed"`
	Log       string `json:"Log"`
	SandboxID string `json:"SandboxID"`
}

// FinishSkillValidationInput records a verdict.
type FinishSkillValidationInput struct {
	SkillID string `json:"SkillID"`
	Passed  bool   `json:"Passed"`
	Log     string `json:"Log"`
}

// ScratchSandboxInput names a scratch sandbox by its key.
type ScratchSandboxInput struct {
	ScratchKey string `json:"ScratchKey"`
}

// StartSnapshotBuildInput allocates the row of a new snapshot version.
type StartSnapshotBuildInput struct {
	Version     int    `json:"Version"`
	DaytonaName string `json:"DaytonaName"`
	Actor       string `json:"Actor"`
	WorkflowID  string `json:"WorkflowID"`
}

// StartSnapshotBuildResult is the version being built and what it holds.
type StartSnapshotBuildResult struct {
	SnapshotID  int64    `json:"SnapshotID"`
	Version     int      `json:"Version"`
	DaytonaName string   `json:"DaytonaName"`
	SkillIDs    []string `json:"SkillIDs"`
	SkillNames  []string `json:"SkillNames"`
	// BuiltFromID is the active version when the build started (nil = base).
	BuiltFromID *int64 `json:"BuiltFromID"`
}

// BuildSnapshotImageInput builds a version's Daytona snapshot.
type BuildSnapshotImageInput struct {
	SnapshotID  int64    `json:"SnapshotID"`
	DaytonaName string   `json:"DaytonaName"`
	ScratchKey  string   `json:"ScratchKey"`
	SkillIDs    []string `json:"SkillIDs"`
}

// BuildSnapshotImageResult is the Daytona snapshot that became active.
type BuildSnapshotImageResult struct {
	DaytonaSnapshotID string `json:"DaytonaSnapshotID"`
	SandboxID         string `json:"SandboxID"`
}

// FailSnapshotBuildInput marks a version failed.
type FailSnapshotBuildInput struct {
	SnapshotID int64  `json:"SnapshotID"`
	Error      string `json:"Error"`
}

// PromoteSnapshotInput makes a freshly built version active if the pointer
// still is where it was when the build started.
type PromoteSnapshotInput struct {
	SnapshotID        int64  `json:"SnapshotID"`
	DaytonaSnapshotID string `json:"DaytonaSnapshotID"`
	ExpectedFromID    *int64 `json:"ExpectedFromID"`
	Actor             string `json:"Actor"`
	Reason            string `json:"Reason"`
	WorkflowID        string `json:"WorkflowID"`
}

// PromoteSnapshotResult says whether the version became active, and why not.
type PromoteSnapshotResult struct {
	Activated bool   `json:"Activated"`
	FromID    *int64 `json:"FromID"`
	Reason    string `json:"Reason"`
}

// EnsureSnapshotUsableInput names a version (0 = the base snapshot) whose
// Daytona snapshot must be active before the pointer moves to it.
type EnsureSnapshotUsableInput struct {
	SnapshotID int64 `json:"SnapshotID"`
}

// ActivateSnapshotInput moves the pointer unconditionally (admin activation
// and rollback); SnapshotID 0 means the base snapshot.
type ActivateSnapshotInput struct {
	SnapshotID int64  `json:"SnapshotID"`
	Actor      string `json:"Actor"`
	Reason     string `json:"Reason"`
	WorkflowID string `json:"WorkflowID"`
}

// ActivateSnapshotResult is the audit row written.
type ActivateSnapshotResult struct {
	FromID *int64    `json:"FromID"`
	ToID   *int64    `json:"ToID"`
	At     time.Time `json:"At"`
}
