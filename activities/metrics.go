package activities

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/metrics"
)

// Metrics are the lifecycle counters the activities record: every transition
// written to the ledger, and every leaked sandbox the reconciler deletes. A
// nil *Metrics records nothing (tests that do not look at metrics).
type Metrics struct {
	transitions *prometheus.CounterVec
	orphans     *prometheus.CounterVec
}

// NewMetrics registers the lifecycle counters with reg. The orphan counter
// starts at zero for both kinds, so the "leaked sandboxes" alert sees the
// first orphan as an increase.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.LifecycleTransitions,
			Help: "Sandbox lifecycle transitions written to the ledger, by kind, event and cause.",
		}, []string{"kind", "event", "cause"}),
		orphans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.ReconcilerOrphansDeleted,
			Help: "Leaked sandboxes (tracked by no workflow) the reconciler deleted, by kind.",
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.transitions, m.orphans} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, kind := range []entity.Kind{entity.KindThread, entity.KindFiles} {
		m.orphans.WithLabelValues(string(kind))
	}
	return m, nil
}

// transition counts a ledger row written for the first time.
func (m *Metrics) transition(ev LifecycleEvent) {
	if m != nil {
		m.transitions.WithLabelValues(string(ev.Kind), ev.Event, ev.Cause).Inc()
	}
}

// orphanDeleted counts a leaked sandbox the reconciler deleted.
func (m *Metrics) orphanDeleted(kind entity.Kind) {
	if m != nil {
		m.orphans.WithLabelValues(string(kind)).Inc()
	}
}
