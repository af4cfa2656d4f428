package testenv

import (
	"context"

	enumspb "go.temporal.io/api/enums/v1"
)

// AcceptedUpdates counts the updates (ensure-running, a thread's cold path)
// a workflow's current run accepted: the hot path's promise is that a warm
// thread's use adds none.
func (e *Env) AcceptedUpdates(wfID string) int {
	e.t.Helper()
	return e.HistoryEvents(wfID, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
}

// HistoryEvents counts the events of type typ in the history of the
// workflow's current run.
func (e *Env) HistoryEvents(wfID string, typ enumspb.EventType) int {
	e.t.Helper()
	it := e.Temporal.GetWorkflowHistory(context.Background(), wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatalf("history of %s: %v", wfID, err)
		}
		if ev.GetEventType() == typ {
			n++
		}
	}
	return n
}
