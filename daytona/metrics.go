package daytona

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Error classes of threadbox_daytona_request_errors_total. 4xx answers other
// than 429 are not errors of Daytona: a 404 is how find-or-create learns a
// sandbox is missing, a 409 how it learns one is mid-transition.
const (
	errorClassServer      = "server"       // 5xx
	errorClassRateLimited = "rate_limited" // 429
	errorClassTransport   = "transport"    // no answer (refused, reset, timed out)
)

// opOther labels a request no route of daytonaRoutes matches.
const opOther = "other"

// daytonaRoute names one Daytona operation the gateway calls: its method and
// the last segments of its path ("{}" matches any one segment). Matching the
// tail of the path works for both the API (base URL ending in /api) and the
// toolbox proxy ({proxy}/toolbox/{sandboxId}). A test checks every route
// against the OpenAPI documents shipped in the client modules, and that a
// run of every gateway operation labels nothing "other".
type daytonaRoute struct {
	method string
	tail   []string
	op     string
}

func daytonaRoutes() []daytonaRoute {
	r := func(method, tail, op string) daytonaRoute {
		return daytonaRoute{method: method, tail: strings.Split(tail, "/"), op: op}
	}
	routes := []daytonaRoute{
		// Control plane (api-client-go).
		r(http.MethodGet, "health", "health"),
		r(http.MethodPost, "sandbox", "create_sandbox"),
		r(http.MethodGet, "sandbox", "list_sandboxes"),
		r(http.MethodGet, "sandbox/{}", "get_sandbox"),
		r(http.MethodDelete, "sandbox/{}", "delete_sandbox"),
		r(http.MethodPost, "sandbox/{}/start", "start_sandbox"),
		r(http.MethodPost, "sandbox/{}/stop", "stop_sandbox"),
		r(http.MethodPost, "sandbox/{}/last-activity", "update_last_activity"),
		r(http.MethodPost, "sandbox/{}/autostop/{}", "set_autostop"),
		r(http.MethodPost, "sandbox/{}/autodelete/{}", "set_autodelete"),
		r(http.MethodPost, "sandbox/{}/snapshot", "create_sandbox_snapshot"),
		r(http.MethodPost, "snapshots", "create_snapshot"),
		r(http.MethodGet, "snapshots/{}", "get_snapshot"),
		r(http.MethodDelete, "snapshots/{}", "delete_snapshot"),
		r(http.MethodPost, "snapshots/{}/activate", "activate_snapshot"),
		r(http.MethodPost, "snapshots/{}/deactivate", "deactivate_snapshot"),
		r(http.MethodPost, "volumes", "create_volume"),
		r(http.MethodGet, "volumes/by-name/{}", "get_volume_by_name"),
		r(http.MethodDelete, "volumes/{}", "delete_volume"),
		// Toolbox (toolbox-api-client-go and the gateway's streamed calls).
		r(http.MethodPost, "process/execute", "exec"),
		r(http.MethodGet, "files", "list_files"),
		r(http.MethodDelete, "files", "delete_file"),
		r(http.MethodGet, "files/info", "stat_file"),
		r(http.MethodPost, "files/move", "move_file"),
		r(http.MethodPost, "files/folder", "create_folder"),
		r(http.MethodGet, "files/download", "download_file"),
		r(http.MethodPost, "files/upload", "upload_file"),
		r(http.MethodPost, "files/bulk-upload", "upload_files"),
	}
	// Longest tails first, so volumes/by-name/{} wins over volumes/{}.
	slices.SortStableFunc(routes, func(a, b daytonaRoute) int { return len(b.tail) - len(a.tail) })
	return routes
}

// daytonaOperation names the operation of a request by its method and path.
func daytonaOperation(routes []daytonaRoute, method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, rt := range routes {
		if rt.method != method || len(rt.tail) > len(segs) {
			continue
		}
		tail := segs[len(segs)-len(rt.tail):]
		match := true
		for i, s := range rt.tail {
			if s != "{}" && s != tail[i] {
				match = false
				break
			}
		}
		if match {
			return rt.op
		}
	}
	return opOther
}

// instrumentedTransport times every Daytona call and counts its failures by
// operation.
type instrumentedTransport struct {
	base     http.RoundTripper
	routes   []daytonaRoute
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// Metric names of the gateway's calls. They are declared here, where they are
// recorded, so the gateway stays a leaf; metrics/names.go lists them with
// every other name for the dashboard and the alert rules.
const (
	MetricRequestDuration = "threadbox_daytona_request_duration_seconds"
	MetricRequestErrors   = "threadbox_daytona_request_errors_total"
)

// InstrumentTransport wraps base (NewTransport() when nil) so every
// request through it is recorded in threadbox_daytona_request_duration_seconds
// and threadbox_daytona_request_errors_total, registered with reg. Give the
// result to the gateway as Config.HTTPClient's Transport. Every operation's
// series start at zero, so rates and alerts work from the first scrape.
func InstrumentTransport(base http.RoundTripper, reg prometheus.Registerer) (http.RoundTripper, error) {
	if base == nil {
		base = NewTransport()
	}
	t := &instrumentedTransport{
		base:   base,
		routes: daytonaRoutes(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricRequestDuration,
			Help:    "Latency of Daytona calls until the response headers, by operation (an exec's includes the command).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 15),
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequestErrors,
			Help: "Daytona calls that failed, by operation and class (server: 5xx, rate_limited: 429, transport: no answer).",
		}, []string{"operation", "class"}),
	}
	for _, c := range []prometheus.Collector{t.duration, t.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	ops := []string{opOther}
	for _, rt := range t.routes {
		if !slices.Contains(ops, rt.op) {
			ops = append(ops, rt.op)
		}
	}
	for _, op := range ops {
		t.duration.WithLabelValues(op)
		for _, class := range []string{errorClassServer, errorClassRateLimited, errorClassTransport} {
			t.errors.WithLabelValues(op, class)
		}
	}
	return t, nil
}

// RoundTrip implements http.RoundTripper.
func (t *instrumentedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := daytonaOperation(t.routes, req.Method, req.URL.Path)
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	switch {
	case err != nil:
		// The caller giving up (a cancelled context) is not Daytona failing.
		if !errors.Is(err, context.Canceled) {
			t.errors.WithLabelValues(op, errorClassTransport).Inc()
		}
		return resp, err
	case resp.StatusCode == http.StatusTooManyRequests:
		t.errors.WithLabelValues(op, errorClassRateLimited).Inc()
	case resp.StatusCode >= 500:
		t.errors.WithLabelValues(op, errorClassServer).Inc()
	}
	t.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	return resp, nil
}
