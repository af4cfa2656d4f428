package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/entity"
)

// stopDeadlines are the deadlines the ledger's "stopped" rows carry.
func (h *harness) stopDeadlines() []time.Time {
	var out []time.Time
	for _, ev := range h.ledger {
		if ev.Event == "stopped" {
			out = append(out, ev.StopDeadline)
		}
	}
	return out
}

// An idle stop records the policy deadline it carried out: last use +
// auto-stop, or the expiry of a lease that outlived it — even though the
// expired lease is pruned before the stop (the usage report measures late
// stops against this deadline). No other row carries one.
func TestEntityStopRecordsItsDeadline(t *testing.T) {
	t.Run("last use", func(t *testing.T) {
		h := newHarness(t)
		var first ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1"}, &first)
		h.signal(10*time.Minute, entity.SignalTouch, entity.TouchSignal{At: t0.Add(10 * time.Minute)})
		h.deleteAt(4*time.Hour, &deleted)
		h.runThread(ladder)
		require.NoError(t, h.env.GetWorkflowError())
		require.Equal(t, []time.Time{t0.Add(25 * time.Minute)}, h.stopDeadlines())
	})
	t.Run("a lease that expired by itself", func(t *testing.T) {
		h := newHarness(t)
		var first ensureOutcome
		var deleted bool
		h.ensure(0, entity.EnsureRequest{RequestID: "r1", Lease: &entity.LeaseRequest{ID: "l1", TTL: time.Hour}}, &first)
		h.deleteAt(4*time.Hour, &deleted)
		h.runThread(ladder)
		require.NoError(t, h.env.GetWorkflowError())
		require.Equal(t, []time.Time{t0.Add(time.Hour)}, h.stopDeadlines())
		for _, ev := range h.ledger {
			if ev.Event != "stopped" {
				require.True(t, ev.StopDeadline.IsZero(), "%s carries no deadline", ev.Event)
			}
		}
		require.Contains(t, h.causes(), "stopped/"+activities.CauseIdleTimer)
	})
}
