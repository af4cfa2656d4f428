package workflows

import (
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
)

// Workflow type names of the skills and snapshots area.
const (
	SkillValidationWorkflowName    = "SkillValidationWorkflow"
	SnapshotBuilderWorkflowName    = "SnapshotBuilderWorkflow"
	SnapshotBuildWorkflowName      = "SnapshotBuildWorkflow"
	SnapshotActivationWorkflowName = "SnapshotActivationWorkflow"
)

// Message names of the skills and snapshots workflows.
const (
	// QueryStatus returns the workflow's current status struct
	// (SkillValidationStatus, BuilderStatus, BuildStatus or ActivationStatus).
	QueryStatus = "status"
	// SignalBuildRequest queues a BuildRequest on the builder.
	SignalBuildRequest = "build-request"
)

// SnapshotBuilderWorkflowID is the single builder: every snapshot build is
// queued on it, so builds run one at a time, in request order.
const SnapshotBuilderWorkflowID = "snapshot-builder"

// Search attributes of the skills workflows (Keyword; registered with the
// others in SearchAttributeNames). UserId holds the admin who acted.
var (
	AttrSkillName       = temporal.NewSearchAttributeKeyKeyword("SkillName")
	AttrSnapshotVersion = temporal.NewSearchAttributeKeyKeyword("SnapshotVersion")
)

// SkillWorkflowID is the validation workflow of one uploaded skill version.
func SkillWorkflowID(name string, version int) string {
	return "skill:" + name + ":" + strconv.Itoa(version)
}

// SnapshotBuildWorkflowID is the build of snapshot version version.
func SnapshotBuildWorkflowID(version int) string { return "snapshot-build:" + strconv.Itoa(version) }

// SnapshotRollbackWorkflowID names a rollback by the time it was asked for.
func SnapshotRollbackWorkflowID(at time.Time) string {
	return "snapshot-rollback:" + at.UTC().Format("20060102T150405.000000000Z")
}

// SnapshotActivateWorkflowID names an explicit activation of version id (0 =
// the base snapshot) by the time it was asked for.
func SnapshotActivateWorkflowID(id int64, at time.Time) string {
	return "snapshot-activate:" + strconv.FormatInt(id, 10) + ":" + at.UTC().Format("20060102T150405.000000000Z")
}

// SkillValidationInput starts the validation of a stored skill version.
type SkillValidationInput struct {
	SkillID string `json:"SkillID"`
	Name    string `json:"Name"`
	Version int    `json:"Version"`
	Actor   string `json:"Actor"` // admin user id who uploaded it
}

// SkillValidationStatus answers QueryStatus on a validation workflow.
type SkillValidationStatus struct {
	Phase     string `json:"Phase"` // validating, cleaning-up, requesting-build, done
	SandboxID string `json:"SandboxID"`
	Result    string `json:"Result"` // "", valid, invalid
	Log       string `json:"Log"`
	Error     string `json:"Error"`
}

// BuildRequest asks for a new snapshot version holding every valid or
// published skill at the time the build starts.
type BuildRequest struct {
	Actor       string    `json:"Actor"`
	Reason      string    `json:"Reason"`
	SkillID     string    `json:"SkillID"` // the skill whose validation asked, if any
	RequestedAt time.Time `json:"RequestedAt"`
}

// BuilderInput starts (or continues) the builder with queued requests.
type BuilderInput struct {
	Pending   []BuildRequest `json:"Pending"`
	Completed int            `json:"Completed"`
}

// BuilderStatus answers QueryStatus on the builder.
type BuilderStatus struct {
	Queued         int `json:"Queued"`
	CurrentVersion int `json:"CurrentVersion"` // 0 when idle
	Completed      int `json:"Completed"`
}

// SnapshotBuildInput starts the build of one version.
type SnapshotBuildInput struct {
	Version int          `json:"Version"`
	Request BuildRequest `json:"Request"`
}

// SnapshotBuildResult is how a build ended.
type SnapshotBuildResult struct {
	SnapshotID  int64    `json:"SnapshotID"`
	Version     int      `json:"Version"`
	DaytonaName string   `json:"DaytonaName"`
	Skills      []string `json:"Skills"`
	Activated   bool     `json:"Activated"`
	Reason      string   `json:"Reason"`
}

// BuildStatus answers QueryStatus on a build workflow.
type BuildStatus struct {
	Phase       string   `json:"Phase"` // preparing, building, promoting, done, failed
	Version     int      `json:"Version"`
	SnapshotID  int64    `json:"SnapshotID"`
	DaytonaName string   `json:"DaytonaName"`
	Skills      []string `json:"Skills"`
	Activated   bool     `json:"Activated"`
	Reason      string   `json:"Reason"`
	Error       string   `json:"Error"`
}

// ActivationInput moves the active pointer (admin activation or rollback).
type ActivationInput struct {
	SnapshotID int64  `json:"SnapshotID"` // 0 = the base snapshot
	Actor      string `json:"Actor"`
	Reason     string `json:"Reason"`
}

// ActivationStatus answers QueryStatus on an activation workflow.
type ActivationStatus struct {
	Phase      string `json:"Phase"` // ensuring-snapshot, switching, done, failed
	SnapshotID int64  `json:"SnapshotID"`
	FromID     *int64 `json:"FromID"`
	Error      string `json:"Error"`
}
