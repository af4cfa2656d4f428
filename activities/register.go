package activities

import "go.temporal.io/sdk/activity"

// Activity type names, as workflow histories record them. Workflows schedule
// activities by these names and the worker registers each method under its
// name, so renaming a Go method never changes a history: open entity
// workflows never end, and a renamed activity type would fail their replay.
// The values are frozen (they are the method names of the first release).
const (
	NameEnsureSandbox        = "EnsureSandbox"
	NameStartSandbox         = "StartSandbox"
	NameStopSandbox          = "StopSandbox"
	NameDeleteSandbox        = "DeleteSandbox"
	NameRefreshSandbox       = "RefreshSandboxActivity"
	NameRecordLifecycleEvent = "RecordLifecycleEvent"
	NameReconcileSandboxes   = "ReconcileSandboxes"

	NameValidateSkill         = "ValidateSkill"
	NameFinishSkillValidation = "FinishSkillValidation"
	NameDeleteScratchSandbox  = "DeleteScratchSandbox"

	NameNextSnapshotVersion  = "NextSnapshotVersion"
	NameStartSnapshotBuild   = "StartSnapshotBuild"
	NameBuildSnapshotImage   = "BuildSnapshotImage"
	NameFailSnapshotBuild    = "FailSnapshotBuild"
	NamePromoteSnapshot      = "PromoteSnapshot"
	NameEnsureSnapshotUsable = "EnsureSnapshotUsable"
	NameActivateSnapshot     = "ActivateSnapshot"
)

// Registry is where activities are registered: a worker, or a test
// environment.
type Registry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// Register registers every activity under its explicit name.
func (a *Activities) Register(r Registry) {
	for _, act := range a.all() {
		r.RegisterActivityWithOptions(act.fn, activity.RegisterOptions{Name: act.name})
	}
}

type namedActivity struct {
	name string
	fn   any
}

// all lists every activity with its name; a test checks that no exported
// method is missing.
func (a *Activities) all() []namedActivity {
	return []namedActivity{
		{NameEnsureSandbox, a.EnsureSandbox},
		{NameStartSandbox, a.StartSandbox},
		{NameStopSandbox, a.StopSandbox},
		{NameDeleteSandbox, a.DeleteSandbox},
		{NameRefreshSandbox, a.RefreshSandbox},
		{NameRecordLifecycleEvent, a.RecordLifecycleEvent},
		{NameReconcileSandboxes, a.ReconcileSandboxes},
		{NameValidateSkill, a.ValidateSkill},
		{NameFinishSkillValidation, a.FinishSkillValidation},
		{NameDeleteScratchSandbox, a.DeleteScratchSandbox},
		{NameNextSnapshotVersion, a.NextSnapshotVersion},
		{NameStartSnapshotBuild, a.StartSnapshotBuild},
		{NameBuildSnapshotImage, a.BuildSnapshotImage},
		{NameFailSnapshotBuild, a.FailSnapshotBuild},
		{NamePromoteSnapshot, a.PromoteSnapshot},
		{NameEnsureSnapshotUsable, a.EnsureSnapshotUsable},
		{NameActivateSnapshot, a.ActivateSnapshot},
	}
}
