package daytona

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
)

// sourceHeader identifies threadbox to Daytona (the SDK sends "sdk-go").
const sourceHeader = "threadbox"

// Config configures a Gateway.
type Config struct {
	// APIURL is Daytona's API base, ending in /api (e.g. https://app.daytona.io/api).
	APIURL string
	// APIKey is sent as Authorization: Bearer on API and toolbox calls.
	APIKey string
	// Target is the Daytona region for new sandboxes ("" = organisation default).
	Target string
	// RequestTimeout caps each control-plane call (default 30s).
	RequestTimeout time.Duration
	// ToolboxTimeout caps toolbox calls other than exec and file transfers (default 60s).
	// Exec and transfers are bounded only by ctx and the command timeout, because agent
	// commands and large files legitimately take longer than any fixed cap.
	ToolboxTimeout time.Duration
	// PollInterval is the first delay of waits (default 100ms); like the SDK it grows ×1.1
	// per poll once a wait has lasted 5s, capped at 1s (or PollInterval if larger).
	PollInterval time.Duration
	// WaitTimeout bounds every wait for a state (default 10m) so a sandbox stuck in a
	// transition cannot hold an activity forever when its ctx has no deadline; it ends
	// with ErrTimeout.
	WaitTimeout time.Duration
	// ListPageSize is the page size of ListSandboxes (default 100; Daytona allows 1..200).
	ListPageSize int
	// HTTPClient, when set, supplies the Transport (our own timeouts still apply: the
	// control plane gets RequestTimeout, the toolbox none beyond ctx).
	HTTPClient *http.Client
	// Logger receives debug logs of calls and waits (default slog.Default()).
	Logger *slog.Logger
}

// Gateway talks to one Daytona organisation. It is safe for concurrent use; create one per
// process and share it.
type Gateway struct {
	cfg     Config
	api     *apiclient.APIClient
	apiHTTP *http.Client
	// tbHTTP has no Client.Timeout: long commands and big transfers are bounded by ctx.
	tbHTTP *http.Client
	log    *slog.Logger
}

// New validates cfg, applies defaults and builds the HTTP clients. It makes no network call.
func New(cfg Config) (*Gateway, error) {
	if cfg.APIURL == "" {
		return nil, errors.New("daytona: Config.APIURL is required")
	}
	u, err := url.Parse(cfg.APIURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("daytona: invalid APIURL %q", cfg.APIURL)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.ToolboxTimeout <= 0 {
		cfg.ToolboxTimeout = 60 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 10 * time.Minute
	}
	if cfg.ListPageSize <= 0 || cfg.ListPageSize > 200 {
		cfg.ListPageSize = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var transport http.RoundTripper = NewTransport()
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		transport = cfg.HTTPClient.Transport
	}
	g := &Gateway{
		cfg:     cfg,
		apiHTTP: &http.Client{Transport: transport, Timeout: cfg.RequestTimeout},
		tbHTTP:  &http.Client{Transport: transport},
		log:     cfg.Logger.With("component", "daytona"),
	}
	ac := apiclient.NewConfiguration()
	ac.Servers = apiclient.ServerConfigurations{{URL: strings.TrimRight(cfg.APIURL, "/")}}
	ac.HTTPClient = g.apiHTTP
	ac.UserAgent = "threadbox"
	ac.AddDefaultHeader("X-Daytona-Source", sourceHeader)
	g.api = apiclient.NewAPIClient(ac)
	return g, nil
}

// actx adds the bearer token the generated API client reads from the context (as the SDK
// does).
func (g *Gateway) actx(ctx context.Context) context.Context {
	return context.WithValue(ctx, apiclient.ContextAccessToken, g.cfg.APIKey)
}

// errStop ends a wait loop with success.
var errStop = errors.New("daytona: wait done")

// fatalErr ends a wait loop with err even when err is Retryable (e.g. a conflict that
// persisted through every attempt the wait allows itself).
type fatalErr struct{ err error }

func (f fatalErr) Error() string { return f.err.Error() }

// poll calls check until it returns errStop (success) or another error, sleeping between
// calls like the SDK: PollInterval, growing ×1.1 per poll after 5s, capped at 1s. A check
// error that is Retryable (a transient 5xx/429/409 on the GET) does not end the wait: the
// wait only observes state, so a blip must not fail a long transition; the last such error
// is reported if the wait times out.
func (g *Gateway) poll(ctx context.Context, op, what string, check func(ctx context.Context) error) error {
	start := time.Now()
	deadline := start.Add(g.cfg.WaitTimeout)
	interval := g.cfg.PollInterval
	maxInterval := time.Second
	if interval > maxInterval {
		maxInterval = interval
	}
	var lastTransient error
	for {
		err := check(ctx)
		var fe fatalErr
		switch {
		case errors.As(err, &fe):
			return fe.err
		case errors.Is(err, errStop):
			return nil
		case err != nil && Retryable(err):
			lastTransient = err
			if d := RetryAfter(err); d > interval {
				interval = min(d, maxInterval*5)
			}
			g.log.DebugContext(ctx, "daytona wait: transient error", "op", op, "err", err)
		case err != nil:
			return err
		}
		if time.Now().After(deadline) {
			return &Error{Kind: ErrTimeout, Op: op, Message: fmt.Sprintf("gave up waiting for %s after %s", what, g.cfg.WaitTimeout), Err: lastTransient}
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("daytona %s: waiting for %s: %w", op, what, ctx.Err())
		case <-t.C:
		}
		if time.Since(start) > 5*time.Second {
			interval = min(time.Duration(float64(interval)*1.1), maxInterval)
		}
	}
}

// parseTime reads Daytona's ISO-8601 timestamps; zero on absence or error.
func parseTime(s *string) time.Time {
	if s == nil || *s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

// isUUID reports whether s looks like a UUID (Daytona's snapshot activate/deactivate/delete
// accept only ids, not names).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return false
			}
		}
	}
	return true
}
