package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readyz reports whether the dependencies a request needs are reachable. It
// answers 503 with the failing checks named, so a load balancer drains the
// instance and an operator sees why.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	checks := map[string]func(context.Context) error{
		"database": s.pool.Ping,
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
	out := readiness{Status: "ready", Checks: map[string]string{}}
	status := http.StatusOK
	for name, check := range checks {
		if err := check(ctx); err != nil {
			s.log.WarnContext(ctx, "readiness check failed", "check", name, "err", err)
			out.Checks[name] = "unavailable"
			out.Status = "not_ready"
			status = http.StatusServiceUnavailable
			continue
		}
		out.Checks[name] = "ok"
	}
	if status != http.StatusOK {
		c.Response().Header().Set("Retry-After", "5")
	}
	return c.JSON(status, out)
}
