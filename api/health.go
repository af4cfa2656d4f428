package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/openapi"
	"github.com/threadbox/threadbox/db"
)

// healthz is liveness: the process runs and serves HTTP. It never looks at a
// dependency, so an orchestrator does not restart an API whose database or
// Temporal is down (a restart would not bring them back).
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// ReadyCacheTTL is how long a readiness answer is reused. /readyz needs no
// key and each check calls PostgreSQL, Temporal and Daytona: without the
// cache, anyone who can reach the port could turn a flood of probes into a
// flood on all three (and on Daytona's rate limit, shared with every user).
// An outage or a recovery still shows within a second.
const ReadyCacheTTL = time.Second

// readinessTimeout bounds one round of checks.
const readinessTimeout = 3 * time.Second

// readinessCache holds the last answer; one caller at a time checks, the
// others wait for it and share its answer.
type readinessCache struct {
	mu     sync.Mutex
	now    func() time.Time
	at     time.Time
	status int
	body   readiness
}

// readyz reports whether the dependencies a request needs are reachable
// (and the database migrated). It answers 503 with the failing checks
// named and Retry-After, so a load balancer drains the instance and an
// operator sees why; /healthz stays 200 meanwhile.
func (s *Server) readyz(c echo.Context) error {
	status, body := s.readiness(c.Request().Context())
	if status != http.StatusOK {
		c.Response().Header().Set("Retry-After", "5")
	}
	return c.JSON(status, body)
}

func (s *Server) readiness(ctx context.Context) (int, readiness) {
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	if !s.ready.at.IsZero() && s.ready.now().Sub(s.ready.at) < ReadyCacheTTL {
		return s.ready.status, s.ready.body
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readinessTimeout)
	defer cancel()
	checks := map[string]func(context.Context) error{
		"database": func(ctx context.Context) error {
			if err := s.migratedErr(); err != nil {
				return err
			}
			return s.pool.Ping(ctx)
		},
	}
	if s.temporal != nil {
		checks["temporal"] = func(ctx context.Context) error {
			_, err := s.temporal.CheckHealth(ctx, nil)
			return err
		}
	}
	if s.daytona != nil {
		checks["daytona"] = s.daytona.Health
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(checks))
	for name, check := range checks {
		go func() { results <- result{name, check(ctx)} }()
	}
	out := readiness{Status: "ready", Checks: map[string]string{}}
	status := http.StatusOK
	for range checks {
		r := <-results
		if r.err != nil {
			s.log.WarnContext(ctx, "readiness check failed", "check", r.name, "err", r.err)
			out.Checks[r.name] = "unavailable"
			out.Status = "not_ready"
			status = http.StatusServiceUnavailable
			continue
		}
		out.Checks[r.name] = "ok"
	}
	s.ready.at, s.ready.status, s.ready.body = s.ready.now(), status, out
	return status, out
}

// migratedErr is nil once the database's migrations are applied, and a
// database_unavailable error before (serve applies them in the background,
// retrying while PostgreSQL is down).
func (s *Server) migratedErr() error {
	if s.migrated == nil {
		return nil
	}
	select {
	case <-s.migrated:
		return nil
	default:
		return fmt.Errorf("migrations not applied yet: %w", db.ErrUnavailable)
	}
}

// requireMigrated answers every API request (REST, WebDAV, uploads) 503
// database_unavailable until the migrations are applied: before that a
// query could meet a missing table or column, which would be a 500.
// Operations endpoints (health, readiness, metrics, the OpenAPI document)
// are served regardless.
func (s *Server) requireMigrated(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.migratedErr(); err != nil && (underPrefix(c, "/v1") || underPrefix(c, "/dav")) && !openapi.Public(c.Path()) {
			return err
		}
		return next(c)
	}
}
