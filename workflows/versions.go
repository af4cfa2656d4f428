package workflows

import "go.temporal.io/sdk/workflow"

// Versioning. Entity workflows never end, so every deploy replays the open
// histories on the new code: any change to the commands a workflow issues
// (an activity, timer, cancellation, marker or search-attribute upsert added,
// removed or reordered) must keep the old branch for histories recorded
// before it, chosen by workflow.GetVersion. A test replays the committed
// histories of workflows/testdata, so a change without a gate fails there.
//
// The entity workflows use one change id whose version grows with each
// change: every run asks for it once, at its start, and keeps the answer. A
// run that began on older code replays with DefaultVersion (no marker in its
// history) and keeps the old behaviour until it continues as new; a new run
// records the newest version. When no open run can still be on an old
// version (each run continues as new well within a week), raise the minimum
// and delete the old branches.
const entityChangeID = "entity-lifecycle"

// Versions of the entity workflows under entityChangeID.
const (
	// entityV1 (issue 12): Daytona's clock is refreshed every AutoStop/2 and
	// only a successful refresh counts (a failure is retried on a short
	// timer; a lost sandbox ends the generation); pending signals are
	// applied at the top of every loop turn; an ensure waits for the
	// sandbox at most entity.MaxEnsureWait; a delete cancels a create in flight.
	entityV1 workflow.Version = 1

	entityLatest = entityV1
)

// entityVersion is the version this run follows (see entityChangeID).
func entityVersion(ctx workflow.Context) workflow.Version {
	return workflow.GetVersion(ctx, entityChangeID, workflow.DefaultVersion, entityLatest)
}
