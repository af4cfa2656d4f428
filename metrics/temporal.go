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
	counters map[string]*prometheus.CounterVec
	gauges   map[string]*prometheus.GaugeVec
	timers   map[string]*prometheus.HistogramVec
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
		counters: map[string]*prometheus.CounterVec{},
		gauges:   map[string]*prometheus.GaugeVec{},
		timers:   map[string]*prometheus.HistogramVec{},
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
	v := h.vecs
	v.mu.Lock()
	vec, ok := v.counters[name]
	if !ok {
		vec = register(v, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name + "_total",
			Help: "Temporal SDK counter " + name + ".",
		}, temporalLabels))
		v.counters[name] = vec
	}
	v.mu.Unlock()
	if vec == nil {
		return client.MetricsNopHandler.Counter(name)
	}
	c := vec.With(h.labels())
	return counterFunc(func(d int64) { c.Add(float64(d)) })
}

// Gauge implements client.MetricsHandler.
func (h *TemporalHandler) Gauge(name string) client.MetricsGauge {
	v := h.vecs
	v.mu.Lock()
	vec, ok := v.gauges[name]
	if !ok {
		vec = register(v, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: name,
			Help: "Temporal SDK gauge " + name + ".",
		}, temporalLabels))
		v.gauges[name] = vec
	}
	v.mu.Unlock()
	if vec == nil {
		return client.MetricsNopHandler.Gauge(name)
	}
	g := vec.With(h.labels())
	return gaugeFunc(g.Set)
}

// Timer implements client.MetricsHandler.
func (h *TemporalHandler) Timer(name string) client.MetricsTimer {
	v := h.vecs
	v.mu.Lock()
	vec, ok := v.timers[name]
	if !ok {
		vec = register(v, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    name + "_seconds",
			Help:    "Temporal SDK timer " + name + ".",
			Buckets: temporalBuckets,
		}, temporalLabels))
		v.timers[name] = vec
	}
	v.mu.Unlock()
	if vec == nil {
		return client.MetricsNopHandler.Timer(name)
	}
	o := vec.With(h.labels())
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

// register registers c, or returns nil (and logs once per name, since the
// caller caches the nil) when the registry refuses it: a name clash must cost
// a metric, never the worker. Called with v.mu held.
func register[C prometheus.Collector](v *temporalVecs, c C) C {
	if err := v.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		v.log.Warn("temporal metric not exported", "err", err)
		var zero C
		return zero
	}
	return c
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }
