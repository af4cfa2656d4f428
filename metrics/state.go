package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/threadbox/threadbox/db"
)

// stateQueryTimeout bounds the queries of one scrape, so a slow database
// makes a scrape miss its gauges rather than pile up behind it.
const stateQueryTimeout = 5 * time.Second

// StateCollector reads what threadbox holds from PostgreSQL at scrape time:
// sandboxes by kind and state, and volume usage against the quota. Reading
// at scrape time keeps one source of truth (the tables the activities write)
// and gives every replica the same numbers; dashboards take max() over them.
type StateCollector struct {
	q          *db.Queries
	quotaBytes int64
	log        *slog.Logger

	sandboxes *prometheus.Desc
	volumes   *prometheus.Desc
	usedBytes *prometheus.Desc
	nearQuota *prometheus.Desc
	quotaDesc *prometheus.Desc
}

// NewStateCollector reads through q; quotaBytes is the per-user quota.
func NewStateCollector(q *db.Queries, quotaBytes int64, log *slog.Logger) *StateCollector {
	if log == nil {
		log = slog.Default()
	}
	return &StateCollector{
		q: q, quotaBytes: quotaBytes, log: log,
		sandboxes: prometheus.NewDesc(Sandboxes, "Sandboxes threadbox holds that are not deleted, by kind and state.", []string{"kind", "state"}, nil),
		volumes:   prometheus.NewDesc(Volumes, "Users' volumes.", nil, nil),
		usedBytes: prometheus.NewDesc(VolumeUsedBytes, "Bytes stored in users' volumes, as the quota layer last counted them.", nil, nil),
		nearQuota: prometheus.NewDesc(VolumesNearQuota, "Volumes using at least 90% of the per-user quota.", nil, nil),
		quotaDesc: prometheus.NewDesc(VolumeQuotaBytes, "The per-user volume quota in bytes.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sandboxes, c.volumes, c.usedBytes, c.nearQuota, c.quotaDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A failed query leaves its gauges
// out of this scrape (absent, not zero) and is logged.
func (c *StateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), stateQueryTimeout)
	defer cancel()
	ch <- prometheus.MustNewConstMetric(c.quotaDesc, prometheus.GaugeValue, float64(c.quotaBytes))
	rows, err := c.q.CountLiveSandboxes(ctx)
	if err != nil {
		c.log.WarnContext(ctx, "metrics: counting sandboxes", "err", err)
	}
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(c.sandboxes, prometheus.GaugeValue, float64(r.Sandboxes), r.SandboxType, r.State)
	}
	u, err := c.q.VolumeTotals(ctx, c.quotaBytes*9/10)
	if err != nil {
		c.log.WarnContext(ctx, "metrics: volume usage", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.volumes, prometheus.GaugeValue, float64(u.Volumes))
	ch <- prometheus.MustNewConstMetric(c.usedBytes, prometheus.GaugeValue, float64(u.UsedBytes))
	ch <- prometheus.MustNewConstMetric(c.nearQuota, prometheus.GaugeValue, float64(u.NearQuota))
}
