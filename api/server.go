// Package api is threadbox's HTTP front door: the REST API for agent runtimes
// and admins, WebDAV and tus uploads for people, and the operational endpoints.
// It is stateless (every fact lives in PostgreSQL, Temporal or Daytona) so it
// scales out behind a load balancer. Handlers talk to sandboxes directly on the
// hot path (exec, files) and to Temporal only to make sure a sandbox is
// running, which keeps per-request latency close to a direct toolbox call.
package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/admission"
	"github.com/threadbox/threadbox/api/admin"
	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/dav"
	"github.com/threadbox/threadbox/api/files"
	"github.com/threadbox/threadbox/api/openapi"
	"github.com/threadbox/threadbox/api/threads"
	"github.com/threadbox/threadbox/api/uploads"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/command"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/davlock"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/guardcache"
	"github.com/threadbox/threadbox/internal/httpserve"
	"github.com/threadbox/threadbox/sandbox"
	"github.com/threadbox/threadbox/volume"
)

// Deps are the collaborators of the API server. Temporal and Daytona may be
// nil only in tests that exercise routes which do not need them.
type Deps struct {
	Config   config.Config
	Pool     *pgxpool.Pool
	Temporal client.Client
	Daytona  *daytona.Gateway
	Logger   *slog.Logger
	// Registry receives the API's Prometheus metrics; a fresh one is made when nil.
	Registry *prometheus.Registry
	// Migrated is closed once the database's migrations are applied; until
	// then API requests answer 503 database_unavailable and /readyz 503.
	// Nil: the database is migrated already.
	Migrated <-chan struct{}
	// Now is the clock of the readiness cache (time.Now when nil).
	Now func() time.Time
	// GuardMaxStale overrides guardcache.MaxStale (tests that show a
	// delete's notification alone reaches another replica set it to hours).
	GuardMaxStale time.Duration
}

// Server is the API server.
type Server struct {
	cfg  config.Config
	pool *pgxpool.Pool
	keys *auth.Cache
	// admission enforces the limits on threads, sandboxes and request rate.
	admission *admission.Controller
	temporal  client.Client
	daytona   *daytona.Gateway
	log       *slog.Logger
	metrics   *httpMetrics
	echo      *echo.Echo
	closers   []func()
	// migrated: see Deps.Migrated.
	migrated <-chan struct{}
	ready    readinessCache
}

// New builds the server and its routes: every route group is its own
// package (threads, files, dav, uploads, admin) and reaches sandboxes only
// through the one sandbox client made here.
func New(d Deps) (*Server, error) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	q := db.New(d.Pool)
	keyStore := auth.NewStore(q)
	s := &Server{
		cfg:      d.Config,
		pool:     d.Pool,
		keys:     auth.NewCache(keyStore, d.Logger, nil),
		temporal: d.Temporal,
		daytona:  d.Daytona,
		log:      d.Logger,
		migrated: d.Migrated,
		ready:    readinessCache{now: d.Now},
	}
	if s.ready.now == nil {
		s.ready.now = time.Now
	}
	m, err := newHTTPMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.closers = append(s.closers, s.keys.Close)
	s.admission = admission.New(admission.Options{Pool: d.Pool, Limits: limitsOf(d.Config), Logger: d.Logger})
	if err := s.admission.Register(d.Registry); err != nil {
		return nil, err
	}
	browser, err := browserMiddleware(d.Config.CORSOrigins)
	if err != nil {
		return nil, err
	}
	sandboxes := sandbox.New(sandbox.Options{
		Admit:     s.admission.AdmitSandbox,
		Temporal:  d.Temporal,
		Gateway:   d.Daytona,
		TaskQueue: d.Config.TemporalTaskQueue,
		Thread:    entity.Config{AutoStop: d.Config.AutoStopInterval.Duration(), AutoDelete: d.Config.AutoDeleteInterval.Duration()},
		Files:     entity.Config{AutoStop: d.Config.FilesAutoStopInterval.Duration()},
		Logger:    d.Logger,
	})
	s.closers = append(s.closers, sandboxes.Close)
	guards := guardcache.New(d.Pool, guardcache.Options{MaxStale: d.GuardMaxStale, Logger: d.Logger})
	s.closers = append(s.closers, guards.Close)
	commands := command.New(command.Options{Sandboxes: sandboxes, Queries: q, Logger: d.Logger, OutputLimit: d.Config.ExecOutputLimit})
	s.closers = append(s.closers, commands.Close)
	volumes := &volume.Service{Sandboxes: sandboxes, Pool: d.Pool, QuotaBytes: d.Config.VolumeQuotaBytes()}
	s.closers = append(s.closers, volumes.StartJanitor(volumeSweepInterval, d.Logger.With("component", "volume")))

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{Generator: newRequestID}))
	e.Use(s.recoverMiddleware)
	e.Use(s.logMiddleware)
	e.Use(s.metrics.middleware)
	s.echo = e

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promHandler(d.Registry)))
	spec, err := openapi.New()
	if err != nil {
		return nil, err
	}
	spec.Register(e)

	// Authentication is a global middleware scoped by path rather than group
	// middleware: echo implements group middleware with a catch-all route,
	// which would turn a wrong method on a known route into a 404 (not 405).
	e.Use(browser...)
	e.Use(s.requireMigrated, s.authMiddleware, s.rateLimit, requireAdmin)
	v1 := e.Group("/v1")
	v1.GET("/whoami", s.whoami)
	(&threads.Routes{Config: d.Config, Queries: q, Sandboxes: sandboxes, Volumes: volumes, Commands: commands, Admission: s.admission, Guards: guards, Logger: d.Logger}).Register(v1)
	(&files.Routes{Volumes: volumes, MaxBodyBytes: d.Config.MaxBodyBytes, QuotaBytes: d.Config.VolumeQuotaBytes(), Logger: d.Logger}).Register(v1)
	(&admin.Routes{Config: d.Config, Pool: d.Pool, Queries: q, Temporal: d.Temporal, Logger: d.Logger}).Register(v1.Group("/admin"))
	(&admin.KeyRoutes{Keys: keyStore}).Register(v1.Group("/admin"))

	davLocks := &davlock.Store{Pool: d.Pool, Logger: d.Logger.With("component", "webdav")}
	davHandler := echo.WrapHandler(&dav.Handler{Prefix: "/dav", Locks: davLocks, Logger: d.Logger.With("component", "webdav"), Volumes: volumes})
	e.Match(dav.Methods, "/dav", davHandler)
	e.Match(dav.Methods, "/dav/*", davHandler)

	spool, err := uploadSpool(d)
	if err != nil {
		return nil, err
	}
	up, err := uploads.New(uploads.Config{
		Dir:        d.Config.UploadDir,
		BasePath:   "/v1/uploads/",
		QuotaBytes: d.Config.VolumeQuotaBytes(),
		SpoolTTL:   uploadSpoolTTL,
		Queries:    q,
		Logger:     d.Logger.With("component", "uploads"),
		Volumes:    volumes,
		Spool:      spool,
	})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, up.Close)
	// The tus methods only, so the route table (and the OpenAPI document)
	// says what is served: discovery and creation at the endpoint, the rest
	// on an upload.
	uh := echo.WrapHandler(http.StripPrefix("/v1/uploads", up.Handler()))
	v1.Match([]string{http.MethodOptions, http.MethodPost}, "/uploads/", uh)
	v1.Match([]string{http.MethodHead, http.MethodPatch, http.MethodDelete}, "/uploads/:upload_id", uh)
	return s, nil
}

// limitsOf reads the admission limits from the configuration.
func limitsOf(c config.Config) admission.Limits {
	return admission.Limits{
		ThreadsPerUser: c.MaxThreadsPerUser, RunningPerUser: c.MaxRunningSandboxesPerUser,
		RunningTotal: c.MaxRunningSandboxes, RequestsPerSecond: c.RateLimit, Burst: c.RateBurst,
	}
}

// Route is one method and path the server registers, in echo's pattern
// syntax (":name" parameters, "*" wildcards).
type Route struct {
	Method, Path string
}

// Routes lists every route registered, for the OpenAPI coverage test.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.echo.Routes() {
		out = append(out, Route{Method: r.Method, Path: r.Path})
	}
	return out
}

// uploadSpoolTTL is how long an interrupted upload can be resumed.
const uploadSpoolTTL = 24 * time.Hour

// volumeSweepInterval is how often abandoned writes are settled (see
// volume.Sweep).
const volumeSweepInterval = time.Minute

// handleError is echo's HTTPErrorHandler: every error a handler returns is
// answered by apierr, the one mapping.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.log.WarnContext(c.Request().Context(), "error after response started", "err", err, "request_id", requestID(c))
		return
	}
	apierr.Respond(c.Response(), c.Request(), err, s.log, "request_id", requestID(c))
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Close releases background work started by route groups (janitors, caches).
func (s *Server) Close() {
	for _, c := range s.closers {
		c()
	}
}

// ListenAndServe serves on addr until ctx is done, then shuts down
// gracefully: the listener closes at once (new connections are refused, so
// a client retries on another replica), and requests in flight get up to
// THREADBOX_SHUTDOWN_TIMEOUT to finish; their contexts are not cancelled
// by the shutdown (an exec keeps its lease and its sandbox), and whatever
// still runs at the bound is cut with its connection.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	drain := s.cfg.ShutdownTimeout
	if drain <= 0 {
		drain = defaultShutdownTimeout
	}
	err = httpserve.Until(ctx, srv, ln, drain)
	if ctx.Err() != nil {
		s.log.InfoContext(ctx, "api stopped", "drain_bound", drain)
		_ = srv.Close() // connections still open past the bound
	}
	return err
}

// defaultShutdownTimeout is the drain bound when the configuration has none
// (a Config built in a test).
const defaultShutdownTimeout = 30 * time.Second

type whoamiResponse struct {
	UserID string `json:"user_id"`
	Admin  bool   `json:"admin"`
}

func (s *Server) whoami(c echo.Context) error {
	p, _ := auth.PrincipalFrom(c.Request().Context())
	return c.JSON(http.StatusOK, whoamiResponse{UserID: p.UserID, Admin: p.Admin})
}
