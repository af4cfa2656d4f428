package api

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/dav"
)

// filesAPI serves a user's volume: /v1/files (REST), /dav/ (WebDAV) and
// /v1/uploads/ (tus). Every byte goes through the user's files sandbox, which
// mounts the volume at entity.VolumeMountPath; agent sandboxes are never involved.
type filesAPI struct {
	s     *Server
	sb    *sandboxClient
	locks *dav.Locks
}

// usageMaxAge bounds how stale the stored volume usage may be for a quota
// decision before it is re-measured in the sandbox (agents' writes only show
// up that way).
const usageMaxAge = 5 * time.Minute

// fileRoutes registers the user-files API, WebDAV and uploads (owned by the
// files change). WebDAV is mounted on the root router because it does its own
// authentication (OPTIONS answers without credentials).
func (s *Server) fileRoutes(root *echo.Echo, v1 *echo.Group) error {
	f := &filesAPI{s: s, locks: &dav.Locks{}, sb: s.sandboxes}

	v1.GET("/files", f.get)
	v1.PUT("/files", f.put)
	v1.DELETE("/files", f.delete)
	v1.POST("/files/move", f.move)

	h := echo.WrapHandler(f.davHandler())
	root.Match(dav.Methods, "/dav", h)
	root.Match(dav.Methods, "/dav/*", h)

	return f.uploadRoutes(v1)
}
