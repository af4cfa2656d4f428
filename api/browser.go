package api

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/threadbox/threadbox/api/apierr"
)

// browserMiddleware is what the API does for browsers, before any
// authentication:
//
//   - Every response carries X-Content-Type-Options: nosniff (user files
//     get more, from httpio.UserContentHeaders).
//   - A request that changes state (any method but GET, HEAD and OPTIONS)
//     sent by a browser from another origin is refused with 403
//     cross_origin_request, decided by Go's http.CrossOriginProtection from
//     Sec-Fetch-Site, or Origin against Host for older browsers. A cross-site
//     form post needs no CORS preflight, and a browser that once opened /dav/
//     would attach its cached Basic credentials. API and WebDAV clients send
//     neither header and are not affected.
//   - The origins in THREADBOX_CORS_ORIGINS (a browser UI served elsewhere)
//     are trusted by that check and get CORS answers: preflights are
//     answered here, without credentials, and responses expose the headers
//     clients of the API, WebDAV and tus read. Requests without an Origin
//     (WebDAV's own OPTIONS) never reach the CORS handling.
func browserMiddleware(origins []string) ([]echo.MiddlewareFunc, error) {
	cop := http.NewCrossOriginProtection()
	for _, o := range origins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("THREADBOX_CORS_ORIGINS: %w", err)
		}
	}
	guard := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("X-Content-Type-Options", "nosniff")
			if err := cop.Check(c.Request()); err != nil {
				return apierr.New(http.StatusForbidden, "cross_origin_request",
					"a browser request from another origin may not change state here; a deployment allows its UI's origin with THREADBOX_CORS_ORIGINS")
			}
			return next(c)
		}
	}
	if len(origins) == 0 {
		return []echo.MiddlewareFunc{guard}, nil
	}
	cors := middleware.CORSWithConfig(middleware.CORSConfig{
		Skipper: func(c echo.Context) bool {
			r := c.Request()
			return r.Header.Get(echo.HeaderOrigin) == "" ||
				(r.Method == http.MethodOptions && r.Header.Get(echo.HeaderAccessControlRequestMethod) == "")
		},
		AllowOrigins:  origins,
		AllowMethods:  corsMethods,
		AllowHeaders:  corsRequestHeaders,
		ExposeHeaders: corsResponseHeaders,
		MaxAge:        600,
	})
	return []echo.MiddlewareFunc{cors, guard}, nil
}

// The methods and headers a browser UI may use cross-origin: the REST API,
// WebDAV and tus.
var (
	corsMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
		"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK"}
	corsRequestHeaders = []string{"Authorization", "Content-Type", "Range", "If-Match", "If-None-Match",
		"Depth", "Destination", "Overwrite", "If", "Lock-Token", "Timeout",
		"Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata", "Upload-Defer-Length", "Upload-Concat",
		"X-HTTP-Method-Override", "X-Request-ID"}
	corsResponseHeaders = []string{"Content-Disposition", "Content-Range", "Content-Length", "ETag", "Last-Modified",
		"Location", "Retry-After", "X-Request-ID", "DAV", "Lock-Token",
		"Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Upload-Offset", "Upload-Length", "Upload-Metadata", "Upload-Expires"}
)
