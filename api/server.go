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
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
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
}

// Server is the API server.
type Server struct {
	cfg      config.Config
	pool     *pgxpool.Pool
	q        *db.Queries
	keys     *auth.Store
	temporal client.Client
	daytona  *daytona.Gateway
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *httpMetrics
	// sandboxes is the hot-path client of every sandbox entity (threads and
	// files sessions), keyed by workflow id.
	sandboxes *sandboxClient
	echo      *echo.Echo
	closers   []func()
}

// New builds the server and its routes.
func New(d Deps) (*Server, error) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	q := db.New(d.Pool)
	s := &Server{
		cfg:      d.Config,
		pool:     d.Pool,
		q:        q,
		keys:     auth.NewStore(q),
		temporal: d.Temporal,
		daytona:  d.Daytona,
		log:      d.Logger,
		registry: d.Registry,
	}
	m, err := newHTTPMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.sandboxes = newSandboxClient(sandboxClientOptions{
		Temporal:  s.temporal,
		Gateway:   s.daytona,
		TaskQueue: s.cfg.TemporalTaskQueue,
		Thread:    entity.Config{AutoStop: s.cfg.AutoStopInterval.Duration(), AutoDelete: s.cfg.AutoDeleteInterval.Duration()},
		Files:     entity.Config{AutoStop: s.cfg.FilesAutoStopInterval.Duration()},
		Logger:    s.log,
	})
	s.closers = append(s.closers, s.sandboxes.Close)

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

	// Authentication is a global middleware scoped by path rather than group
	// middleware: echo implements group middleware with a catch-all route,
	// which would turn a wrong method on a known route into a 404 (not 405).
	e.Use(s.authMiddleware, requireAdmin)
	v1 := e.Group("/v1")
	v1.GET("/whoami", s.whoami)
	if err := s.threadRoutes(v1); err != nil {
		return nil, err
	}
	if err := s.fileRoutes(e, v1); err != nil {
		return nil, err
	}
	admin := v1.Group("/admin")
	if err := s.adminRoutes(admin); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Close releases background work started by route groups (janitors, caches).
func (s *Server) Close() {
	for _, c := range s.closers {
		c()
	}
}

// ListenAndServe serves on addr until ctx is done, then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	srv := &http.Server{
		Addr:              addr,
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	}
}

type whoamiResponse struct {
	UserID string `json:"user_id"`
	Admin  bool   `json:"admin"`
}

func (s *Server) whoami(c echo.Context) error {
	p := principal(c)
	return c.JSON(http.StatusOK, whoamiResponse{UserID: p.UserID, Admin: p.Admin})
}
