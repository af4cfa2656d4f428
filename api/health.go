package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// ReadyCacheTTL is how long one readiness answer is served again. /readyz
// needs no key and each check is a call to PostgreSQL, Temporal and Daytona:
// without the cache, anyone who can reach the port could turn a flood of
// /readyz into a flood on all three (and on Daytona's rate limit, shared with
// every user). A load balancer probes every few seconds, so a second-old
// answer loses it nothing.
const ReadyCacheTTL = time.Second

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readyCache holds the last readiness answer. Its mutex is held while the
// checks run, so concurrent probes after an expiry wait for one round of
// checks instead of each starting their own.
type readyCache struct {
	mu     sync.Mutex
	now    func() time.Time
	at     time.Time
	status int
	out    readiness
}

// readyz reports whether the dependencies a request needs are reachable. It
// answers 503 with the failing checks named, so a load balancer drains the
// instance and an operator sees why. An answer is reused for ReadyCacheTTL.
func (s *Server) readyz(c echo.Context) error {
	rc := s.ready
	rc.mu.Lock()
	if rc.at.IsZero() || rc.now().Sub(rc.at) >= ReadyCacheTTL {
		rc.status, rc.out = s.checkReadiness(c.Request().Context())
		rc.at = rc.now()
	}
	status, out := rc.status, rc.out
	rc.mu.Unlock()
	if status != http.StatusOK {
		c.Response().Header().Set("Retry-After", "5")
	}
	return c.JSON(status, out)
}

// checkReadiness calls every dependency once. Its context does not end with
// the probe that runs it: the answer is shared with the probes waiting for it.
func (s *Server) checkReadiness(ctx context.Context) (int, readiness) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
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
	return status, out
}
