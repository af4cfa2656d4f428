// Package deploycheck reads what deploy/ and docker-compose.yaml describe the
// way the tools that consume them do (kustomize, the compose-spec loader,
// Prometheus' rule and PromQL parsers), so tests can check them without a
// cluster, a Docker engine or a Prometheus server. Only tests import it.
package deploycheck

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/threadbox/threadbox/config"
)

// Kustomize renders the kustomization in dir as kubectl apply -k would, one
// YAML document per object.
func Kustomize(dir string) ([][]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	var docs [][]byte
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %s: %w", dir, r.CurId(), err)
		}
		docs = append(docs, y)
	}
	return docs, nil
}

// Compose loads a compose file with the compose-spec loader: schema
// validation on (an unknown key fails), interpolation from env, paths
// resolved against the file's directory, and every profile enabled.
func Compose(ctx context.Context, path string, env map[string]string) (*types.Project, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return nil, err
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: b}},
		Environment: env,
	}
	p, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName(strings.TrimSuffix(filepath.Base(filepath.Dir(abs)), "/"), false)
		o.ResolvePaths = true
		o.Profiles = []string{"*"}
	})
	if err != nil {
		return nil, fmt.Errorf("compose %s: %w", path, err)
	}
	return p, nil
}

// promqlParser parses like a Prometheus server with default flags.
func promqlParser() parser.Parser { return parser.NewParser(parser.Options{}) }

// Rules parses a Prometheus rule file strictly (unknown fields fail, every
// expression and template checked) and returns its rules.
func Rules(path string) ([]rulefmt.Rule, error) {
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promqlParser(), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, fmt.Errorf("rules %s: %v", path, errs)
	}
	var out []rulefmt.Rule
	for _, g := range groups.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// Dashboard is the part of a Grafana dashboard JSON model the checks read.
type Dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []Panel `json:"panels"`
}

// Panel is a dashboard panel (rows carry nested panels when collapsed).
type Panel struct {
	ID         int         `json:"id"`
	Title      string      `json:"title"`
	Type       string      `json:"type"`
	Datasource *Datasource `json:"datasource"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"`
}

// Datasource names the data source of a panel or query.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel.
type Target struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

// grafanaVariables are the built-in variables the dashboard's queries use,
// with the value Grafana would substitute, so the PromQL parser sees a query.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// DashboardQueries decodes a dashboard and returns every query, keyed by
// "panel title/refId", with Grafana's built-in variables substituted.
// Unknown fields are allowed: the model has hundreds the checks do not read.
func DashboardQueries(path string) (Dashboard, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Dashboard{}, nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return Dashboard{}, nil, fmt.Errorf("dashboard %s: %w", path, err)
	}
	out := map[string]string{}
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				out[p.Title+"/"+t.RefID] = grafanaVariables.Replace(t.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, out, nil
}

// MetricNames parses a PromQL expression and returns the metric names its
// selectors name, sorted and without duplicates.
func MetricNames(expr string) ([]string, error) {
	e, err := promqlParser().ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, sel := range parser.ExtractSelectors(e) {
		for _, m := range sel {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				names = append(names, m.Value)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// ConfigNames are the environment variables config.Config reads, from its
// struct tags: the source of truth the manifests are checked against.
func ConfigNames() []string {
	var out []string
	t := reflect.TypeFor[config.Config]()
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("env"); name != "" {
			out = append(out, name)
		}
	}
	return out
}

// Repository files holding the dashboard and the alert rules.
const (
	DashboardFile = "deploy/grafana/threadbox.json"
	AlertsFile    = "deploy/prometheus/threadbox-alerts.yaml"
)

// UsedMetrics returns every metric name the dashboard and the alert rules in
// the repository at root query, each with where it is used.
func UsedMetrics(root string) (map[string][]string, error) {
	used := map[string][]string{}
	add := func(where, expr string) error {
		names, err := MetricNames(expr)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		for _, n := range names {
			used[n] = append(used[n], where)
		}
		return nil
	}
	_, queries, err := DashboardQueries(filepath.Join(root, DashboardFile))
	if err != nil {
		return nil, err
	}
	for where, expr := range queries {
		if err := add(DashboardFile+": "+where, expr); err != nil {
			return nil, err
		}
	}
	rules, err := Rules(filepath.Join(root, AlertsFile))
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if err := add(AlertsFile+": "+r.Alert+r.Record, r.Expr); err != nil {
			return nil, err
		}
	}
	return used, nil
}

// Family is the metric family a series name of a query belongs to: a
// histogram's _bucket, _count and _sum series belong to the histogram.
func Family(series string, families map[string]bool) (string, bool) {
	if families[series] {
		return series, true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && families[base] {
			return base, true
		}
	}
	return "", false
}
