package api

import "github.com/labstack/echo/v4"

// adminRoutes registers the skills and snapshots API. The group already
// requires an admin key (403 otherwise).
func (s *Server) adminRoutes(g *echo.Group) error {
	g.POST("/skills", s.uploadSkill)
	g.GET("/skills", s.listSkills)
	g.GET("/skills/:id", s.getSkill)
	g.GET("/snapshots", s.listSnapshots)
	g.GET("/snapshots/activations", s.listActivations)
	g.GET("/snapshots/:id", s.getSnapshot)
	g.POST("/snapshots/:id/activate", s.activateSnapshot)
	g.POST("/snapshots/rollback", s.rollbackSnapshot)
	return nil
}
