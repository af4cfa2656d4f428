package deploycheck

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/threadbox/threadbox/internal/testenv"
)

// TestAlertRulesParse: the rules load with Prometheus' own parser (strict),
// and each names its severity and says what is wrong.
func TestAlertRulesParse(t *testing.T) {
	rules, err := Rules(filepath.Join(testenv.RepoRoot(t), AlertsFile))
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, r := range rules {
		alerts = append(alerts, r.Alert)
		if !slices.Contains([]string{"warning", "critical"}, r.Labels["severity"]) {
			t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: summary and description are required", r.Alert)
		}
	}
	for _, want := range []string{"ThreadboxLeakedSandboxes", "ThreadboxStopsLate", "ThreadboxDaytonaErrorRate", "ThreadboxWorkflowTaskFailures"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing", want)
		}
	}
}

// TestDashboardParses: the dashboard decodes, every query is PromQL the
// parser accepts, on the templated Prometheus data source, and every panel
// has a unique id.
func TestDashboardParses(t *testing.T) {
	d, queries, err := DashboardQueries(filepath.Join(testenv.RepoRoot(t), DashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title")
	}
	if len(queries) < 15 {
		t.Errorf("only %d queries", len(queries))
	}
	for where, expr := range queries {
		if strings.Contains(expr, "$") {
			t.Errorf("%s: unsubstituted variable in %q", where, expr)
		}
		if _, err := MetricNames(expr); err != nil {
			t.Errorf("%s: %v", where, err)
		}
	}
	ids := map[int]bool{}
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d repeats", p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && (p.Datasource == nil || p.Datasource.UID != "${datasource}") {
				t.Errorf("panel %q is not on the ${datasource} variable", p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if _, err := MetricNames("rate(threadbox_x_total[5m]"); err == nil {
		t.Error("the PromQL parser accepted a broken query")
	}
}

// TestDashboardCoversTheIssue: the panels the operations issue asks for.
func TestDashboardCoversTheIssue(t *testing.T) {
	used, err := UsedMetrics(testenv.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"threadbox_sandboxes", "threadbox_lifecycle_transitions_total",
		"threadbox_daytona_request_duration_seconds_bucket", "threadbox_daytona_request_errors_total",
		"threadbox_hotpath_cache_lookups_total", "threadbox_volume_used_bytes", "threadbox_sandbox_seconds_total",
		"threadbox_reconciler_orphans_deleted_total", "threadbox_sandbox_stop_delay_seconds_bucket",
		"temporal_workflow_task_execution_failed_total",
	} {
		if len(used[name]) == 0 {
			t.Errorf("neither the dashboard nor the rules use %s", name)
		}
	}
}
