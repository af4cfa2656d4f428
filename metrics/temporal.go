package metrics

import (
	"errors"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// temporalLabels are the tags the Temporal SDK puts on its metrics (see the
// SDK's metric tag constants) that are worth a label. Every SDK series gets
// all of them, empty where the SDK gave none (an empty label is no label to
// PromQL), because a Prometheus metric needs one fixed label set while the
// SDK varies its tags from call to call. client_name is always "temporal_go"
// and is dropped.
var temporalLabels = []string{
	"namespace", "task_queue", "workflow_type", "activity_type", "worker_type",
	"poller_type", "operation", "failure_reason", "cause", "status_code",
	"nexus_service", "nexus_operation",
}

// temporalBuckets span 1 ms to about 2 min: workflow tasks take milliseconds,
// long polls and activities (a snapshot build) take much longer.
var temporalBuckets = prometheus.ExponentialBuckets(0.001, 2, 18)

// TemporalHandler is a client.MetricsHandler that exports the Temporal SDK's
// client and worker metrics to a Prometheus registry (the SDK's own tally
// adapter is not served by the module proxy this project uses). Counters get
// the _total suffix and timers become histograms in seconds with the _seconds
// suffix: temporal_workflow_task_execution_failed_total,
// temporal_activity_execution_latency_seconds.
type TemporalHandler struct {
	vecs *temporalVecs
	tags map[string]string
}

// temporalVecs holds the collectors created so far, shared by every handler
// derived with WithTags.
type temporalVecs struct {
	reg      prometheus.Registerer
	log      *slog.Logger
	mu       sync.Mutex
	counters map[string]vecEntry[*prometheus.CounterVec]
	gauges   map[string]vecEntry[*prometheus.GaugeVec]
	timers   map[string]vecEntry[*prometheus.HistogramVec]
}

var _ client.MetricsHandler = (*TemporalHandler)(nil)

// NewTemporalHandler returns a handler that registers the SDK's metrics with
// reg as the SDK first uses them.
func NewTemporalHandler(reg prometheus.Registerer, log *slog.Logger) *TemporalHandler {
	if log == nil {
		log = slog.Default()
	}
	return &TemporalHandler{vecs: &temporalVecs{
		reg:      reg,
		log:      log,
		counters: map[string]vecEntry[*prometheus.CounterVec]{},
		gauges:   map[string]vecEntry[*prometheus.GaugeVec]{},
		timers:   map[string]vecEntry[*prometheus.HistogramVec]{},
	}, tags: map[string]string{}}
}

// WithTags implements client.MetricsHandler.
func (h *TemporalHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	maps.Copy(merged, tags)
	return &TemporalHandler{vecs: h.vecs, tags: merged}
}

// labels are the handler's tags as a full label set.
func (h *TemporalHandler) labels() prometheus.Labels {
	l := make(prometheus.Labels, len(temporalLabels))
	for _, name := range temporalLabels {
		l[name] = h.tags[name]
	}
	return l
}

// Counter implements client.MetricsHandler.
func (h *TemporalHandler) Counter(name string) client.MetricsCounter {
	vec, ok := lookup(h.vecs, h.vecs.counters, name, func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name + "_total",
			Help: "Temporal SDK counter " + name + ".",
		}, temporalLabels)
	})
	if !ok {
		return client.MetricsNopHandler.Counter(name)
	}
	c := vec.With(h.labels())
	return counterFunc(func(d int64) { c.Add(float64(d)) })
}

// Gauge implements client.MetricsHandler.
func (h *TemporalHandler) Gauge(name string) client.MetricsGauge {
	vec, ok := lookup(h.vecs, h.vecs.gauges, name, func() *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: name,
			Help: "Temporal SDK gauge " + name + ".",
		}, temporalLabels)
	})
	if !ok {
		return client.MetricsNopHandler.Gauge(name)
	}
	return gaugeFunc(vec.With(h.labels()).Set)
}

// Timer implements client.MetricsHandler.
func (h *TemporalHandler) Timer(name string) client.MetricsTimer {
	vec, ok := lookup(h.vecs, h.vecs.timers, name, func() *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    name + "_seconds",
			Help:    "Temporal SDK timer " + name + ".",
			Buckets: temporalBuckets,
		}, temporalLabels)
	})
	if !ok {
		return client.MetricsNopHandler.Timer(name)
	}
	o := vec.With(h.labels())
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

// vecEntry is a cached collector; ok is false when the registry refused it
// (a name clash), which costs that metric, never the worker, and is logged
// once.
type vecEntry[V prometheus.Collector] struct {
	vec V
	ok  bool
}

// lookup returns the collector of name from cache, building and registering
// it on first use.
func lookup[V prometheus.Collector](v *temporalVecs, cache map[string]vecEntry[V], name string, build func() V) (V, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e, ok := cache[name]; ok {
		return e.vec, e.ok
	}
	e := vecEntry[V]{vec: build(), ok: true}
	if err := v.reg.Register(e.vec); err != nil {
		var are prometheus.AlreadyRegisteredError
		existing, same := V(e.vec), false
		if errors.As(err, &are) {
			existing, same = are.ExistingCollector.(V)
		}
		if same {
			e.vec = existing
		} else {
			v.log.Warn("temporal metric not exported", "metric", name, "err", err)
			e.ok = false
		}
	}
	cache[name] = e
	return e.vec, e.ok
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }
