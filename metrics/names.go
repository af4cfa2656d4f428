// Package metrics is the one place threadbox's Prometheus metric names are
// defined, and holds what exports them outside the API server: an adapter
// that turns the Temporal SDK's worker metrics into Prometheus series, the
// gauges read from PostgreSQL at scrape time, and the worker's small /metrics
// listener. The Grafana dashboard and the alert rules under deploy/ use these
// names; a test in cmd/threadbox scrapes the real serve and worker processes
// and fails when a name the dashboard or a rule uses is not exported.
package metrics

import "github.com/threadbox/threadbox/daytona"

// Names of the metrics threadbox exports. Counters end in _total and
// durations are histograms in seconds, as Prometheus' conventions ask.
const (
	// HTTPRequests counts API requests by route, method and status
	// (api/metrics.go).
	HTTPRequests = "threadbox_http_requests_total"
	// HTTPRequestDuration is the API's latency by route and method.
	HTTPRequestDuration = "threadbox_http_request_duration_seconds"

	// DaytonaRequestDuration is the latency of Daytona calls (control plane
	// and toolbox) by operation, until the response headers: an exec's
	// includes the command's own run time.
	DaytonaRequestDuration = daytona.MetricRequestDuration
	// DaytonaRequestErrors counts Daytona calls that failed by operation and
	// class: server (5xx), rate_limited (429) or transport (no answer).
	DaytonaRequestErrors = daytona.MetricRequestErrors

	// LifecycleTransitions counts sandbox lifecycle transitions written to the
	// ledger, by kind (thread, files), event and cause.
	LifecycleTransitions = "threadbox_lifecycle_transitions_total"
	// ReconcilerOrphansDeleted counts sandboxes the reconciler found leaked
	// (no workflow tracks them) and deleted, by kind.
	ReconcilerOrphansDeleted = "threadbox_reconciler_orphans_deleted_total"

	// Sandboxes is the number of sandboxes threadbox holds in PostgreSQL that
	// are not deleted, by kind (agent, files, scratch) and state.
	Sandboxes = "threadbox_sandboxes"
	// Volumes is the number of users' volumes (rows of the volumes table).
	Volumes = "threadbox_volumes"
	// VolumeUsedBytes is the sum of the bytes users have stored, as the quota
	// layer last measured or counted them.
	VolumeUsedBytes = "threadbox_volume_used_bytes"
	// VolumesNearQuota is the number of volumes using at least 90 % of the
	// per-user quota.
	VolumesNearQuota = "threadbox_volumes_near_quota"
	// VolumeQuotaBytes is the per-user quota (DAYTONA_VOLUME_SIZE_GB).
	VolumeQuotaBytes = "threadbox_volume_quota_bytes"

	// AdmissionLimit is each admission limit's configured value, by limit
	// (thread_limit and sandbox_limit per user, total_sandbox_limit,
	// rate_limited in requests per second per key and replica); a limit
	// that is off is left out.
	AdmissionLimit = "threadbox_admission_limit"
	// AdmissionUsage is the usage each limit is compared with, read from
	// PostgreSQL at scrape time: running sandboxes in total
	// (total_sandbox_limit), the most running agent sandboxes of any user
	// (sandbox_limit), the most live threads of any user (thread_limit).
	AdmissionUsage = "threadbox_admission_usage"
	// AdmissionUsersAtLimit is the number of users at a per-user limit.
	AdmissionUsersAtLimit = "threadbox_admission_users_at_limit"
	// AdmissionRefused counts requests refused with 429, by limit.
	AdmissionRefused = "threadbox_admission_refused_total"

	// SandboxSeconds counts the seconds sandboxes ran, by kind (agent,
	// files), from the lifecycle ledger as each running interval ends (the
	// usage report's numbers; activities.Metrics).
	SandboxSeconds = "threadbox_sandbox_seconds_total"
	// SandboxStopDelay is how long after its policy deadline (last use +
	// auto-stop, or the last lease) an idle sandbox was stopped, by kind:
	// the ledger's "late stops".
	SandboxStopDelay = "threadbox_sandbox_stop_delay_seconds"

	// TemporalWorkflowTaskFailures is the Temporal SDK's count of failed
	// workflow tasks (a panic, a non-determinism error), exported by the
	// worker through TemporalHandler.
	TemporalWorkflowTaskFailures = "temporal_workflow_task_execution_failed_total"
	// TemporalActivityFailures is the SDK's count of failed activity attempts.
	TemporalActivityFailures = "temporal_activity_execution_failed_total"
)

// Names defined here for code other engineers are rewriting; the dashboard and
// the alert rules already use them. The export test lets exactly these be
// missing (and prints them), and fails once one is exported, so the list only
// shrinks.
const (
	// HotPathCacheLookups counts the API's sandbox-window cache lookups by
	// kind (thread, files) and result (hit, miss); a hit is an exec or file
	// call that skipped Temporal. To be recorded in the API's sandbox client.
	HotPathCacheLookups = "threadbox_hotpath_cache_lookups_total"
)

// Pending lists the names above that no process exports yet.
func Pending() []string {
	return []string{HotPathCacheLookups}
}
