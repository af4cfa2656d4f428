package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/openapi"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/temporalrpc"
)

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// credentials extracts an API key from Bearer or Basic (password) auth. With
// Basic, the user name is ignored: the key alone identifies the user.
func credentials(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	// The scheme name is case-insensitive (RFC 9110 §11.1).
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass, true
	}
	return "", false
}

// authenticate resolves the request's principal or returns a 401 Error.
func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	key, ok := credentials(r)
	if !ok || key == "" {
		return auth.Principal{}, apierr.New(http.StatusUnauthorized, "unauthorized", "missing api key")
	}
	p, err := s.keys.Verify(r.Context(), key)
	if err != nil {
		if err == auth.ErrInvalidKey {
			return auth.Principal{}, apierr.New(http.StatusUnauthorized, "unauthorized", "invalid api key")
		}
		return auth.Principal{}, fmt.Errorf("authenticating: %w", err)
	}
	return p, nil
}

// underPrefix reports whether a request is for prefix or below it, by the
// route it matched or, for unmatched requests, by its path.
func underPrefix(c echo.Context, prefix string) bool {
	for _, p := range []string{c.Path(), c.Request().URL.Path} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

// authMiddleware authenticates every request under /v1 and /dav. WebDAV's
// OPTIONS is answered without credentials (Windows gives up when its first
// OPTIONS gets 401), and WebDAV's 401 asks for Basic, which WebDAV clients
// speak. The OpenAPI document is public: a client reads it before it has a key.
func (s *Server) authMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		dav := underPrefix(c, "/dav")
		if !underPrefix(c, "/v1") && !dav {
			return next(c)
		}
		if dav && c.Request().Method == http.MethodOptions || openapi.Public(c.Path()) {
			return next(c)
		}
		p, err := s.authenticate(c.Request())
		if err != nil {
			if dav {
				c.Response().Header().Set("WWW-Authenticate", `Basic realm="threadbox", charset="UTF-8"`)
			}
			return err
		}
		// The request's Temporal calls give up on an unreachable server after
		// temporalrpc.Grace (503 orchestrator_unavailable) instead of retrying
		// until the request's own deadline: a client told to retry in 5 s is
		// better served than one left waiting a minute for a 500. Only
		// authenticated requests reach Temporal; work a request leaves running
		// (context.WithoutCancel) keeps the mark.
		ctx := temporalrpc.FailFast(auth.WithPrincipal(c.Request().Context(), p))
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// rateLimit takes each authenticated request from its key's token bucket
// (429 rate_limited with Retry-After when empty).
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p, ok := auth.PrincipalFrom(c.Request().Context()); ok {
			if err := s.admission.Allow(p.KeyID); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// requireAdmin refuses non-admin keys under /v1/admin (after authMiddleware).
func requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p, _ := auth.PrincipalFrom(c.Request().Context()); underPrefix(c, "/v1/admin") && !p.Admin {
			return apierr.New(http.StatusForbidden, "forbidden", "this route needs an admin api key")
		}
		return next(c)
	}
}

func (s *Server) recoverMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		return next(c)
	}
}

func (s *Server) logMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req := c.Request()
		// Checked first: the attributes below would be built (and
		// allocated) on every request even when debug logs are off.
		if !s.log.Enabled(req.Context(), slog.LevelDebug) {
			return nil
		}
		s.log.DebugContext(req.Context(), "request",
			"method", req.Method, "path", req.URL.Path, "status", c.Response().Status,
			"bytes", c.Response().Size, "duration", time.Since(start), "request_id", requestID(c))
		return nil
	}
}
