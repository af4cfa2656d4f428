package workflows

import "github.com/threadbox/threadbox/entity"

// SearchAttributeNames are the custom attributes a Temporal namespace must
// have registered (threadbox dev and the test harness register them on their
// dev servers).
var SearchAttributeNames = []string{
	entity.AttrThreadID.GetName(), entity.AttrUserID.GetName(),
	entity.AttrSandboxID.GetName(), entity.AttrSandboxState.GetName(),
	AttrSkillName.GetName(), AttrSnapshotVersion.GetName(),
}

// Thread rows (table threads) are written by the thread workflow's
// activities: state mirrors entity.State.Phase, except that an auto-deleted
// sandbox leaves the thread "stopped" with no sandbox_id (the thread lives
// on; its next use creates generation+1), and "deleted" means only that the
// user deleted the thread.
