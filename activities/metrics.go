package activities

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/metrics"
	"github.com/threadbox/threadbox/usage"
)

// Metrics are the lifecycle counters the activities record: every transition
// written to the ledger, every leaked sandbox the reconciler deletes, the
// seconds sandboxes ran and how late idle stops came. A
// nil *Metrics records nothing (tests that do not look at metrics).
type Metrics struct {
	transitions *prometheus.CounterVec
	orphans     *prometheus.CounterVec
	seconds     *prometheus.CounterVec
	stopDelay   *prometheus.HistogramVec
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
		seconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.SandboxSeconds,
			Help: "Seconds sandboxes ran, by kind (agent, files), counted from the ledger as each running interval ends.",
		}, []string{"kind"}),
		stopDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metrics.SandboxStopDelay,
			Help:    "How long after its policy deadline (last use + auto-stop, or the last lease) an idle sandbox was stopped, by kind (agent, files).",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 900, 3600},
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.transitions, m.orphans, m.seconds, m.stopDelay} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, kind := range []entity.Kind{entity.KindThread, entity.KindFiles} {
		m.orphans.WithLabelValues(string(kind))
		m.seconds.WithLabelValues(usage.SandboxKind(kind))
		m.stopDelay.WithLabelValues(usage.SandboxKind(kind))
	}
	return m, nil
}

// ran counts a running interval that ev ended, and the stop's delay past
// its deadline for an idle stop.
func (m *Metrics) ran(ev LifecycleEvent, d time.Duration) {
	if m == nil {
		return
	}
	kind := usage.SandboxKind(ev.Kind)
	if d > 0 {
		m.seconds.WithLabelValues(kind).Add(d.Seconds())
	}
	if !ev.StopDeadline.IsZero() {
		m.stopDelay.WithLabelValues(kind).Observe(max(ev.OccurredAt.Sub(ev.StopDeadline), 0).Seconds())
	}
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
