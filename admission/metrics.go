package admission

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/metrics"
)

// controllerMetrics are what a controller counts itself.
type controllerMetrics struct {
	refused *prometheus.CounterVec
}

func newControllerMetrics() *controllerMetrics {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metrics.AdmissionRefused,
		Help: "Requests refused with 429 by an admission limit, by limit.",
	}, []string{"limit"})
	for _, l := range []string{ThreadLimit, SandboxLimit, TotalSandboxLimit, RateLimit} {
		refused.WithLabelValues(l) // exported at 0 before the first refusal, so rates start from it
	}
	return &controllerMetrics{refused: refused}
}

// usageQueryTimeout bounds the usage query of one scrape.
const usageQueryTimeout = 5 * time.Second

// Register exports the controller's metrics in reg: the limits, the usage
// they are compared with (read from PostgreSQL at scrape time, so every
// replica reports the same numbers) and the refusals of this replica.
func (c *Controller) Register(reg prometheus.Registerer) error {
	if err := reg.Register(c.m.refused); err != nil {
		return err
	}
	return reg.Register(&usageCollector{c: c,
		limit:   prometheus.NewDesc(metrics.AdmissionLimit, "Configured admission limits, by limit (absent when off).", []string{"limit"}, nil),
		usage:   prometheus.NewDesc(metrics.AdmissionUsage, "Usage compared with each admission limit: running sandboxes in total, the most running agent sandboxes and live threads of any user.", []string{"limit"}, nil),
		atLimit: prometheus.NewDesc(metrics.AdmissionUsersAtLimit, "Users at a per-user admission limit.", []string{"limit"}, nil),
	})
}

type usageCollector struct {
	c                     *Controller
	limit, usage, atLimit *prometheus.Desc
}

func (u *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- u.limit
	ch <- u.usage
	ch <- u.atLimit
}

// Collect implements prometheus.Collector. A failed query leaves the usage
// out of this scrape (absent, not zero) and is logged.
func (u *usageCollector) Collect(ch chan<- prometheus.Metric) {
	l := u.c.limits
	gauge := func(d *prometheus.Desc, v float64, limit string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, limit)
	}
	for name, v := range map[string]float64{
		ThreadLimit: float64(l.ThreadsPerUser), SandboxLimit: float64(l.RunningPerUser),
		TotalSandboxLimit: float64(l.RunningTotal), RateLimit: l.RequestsPerSecond,
	} {
		if v > 0 {
			gauge(u.limit, v, name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), usageQueryTimeout)
	defer cancel()
	r, err := u.c.q.AdmissionUsage(ctx, db.AdmissionUsageParams{SandboxLimit: int32(l.RunningPerUser), ThreadLimit: int32(l.ThreadsPerUser)})
	if err != nil {
		u.c.log.WarnContext(ctx, "metrics: admission usage", "err", err)
		return
	}
	gauge(u.usage, float64(r.RunningTotal), TotalSandboxLimit)
	gauge(u.usage, float64(r.MaxUserRunning), SandboxLimit)
	gauge(u.usage, float64(r.MaxUserThreads), ThreadLimit)
	gauge(u.atLimit, float64(r.UsersAtSandboxLimit), SandboxLimit)
	gauge(u.atLimit, float64(r.UsersAtThreadLimit), ThreadLimit)
}
