// Package admin serves /v1/admin: skills (upload, validation status),
// snapshot versions (list, activate, roll back) and the usage report. The server only routes
// admin keys here (403 otherwise); the work itself runs in the skills and
// snapshot workflows, which these routes start and read.
package admin

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/client"

	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/db"
)

// Routes serve /v1/admin.
type Routes struct {
	Config   config.Config
	Pool     *pgxpool.Pool
	Queries  *db.Queries
	Temporal client.Client
	Logger   *slog.Logger
}

// Register adds the admin routes to the /v1/admin group.
func (a *Routes) Register(g *echo.Group) {
	g.POST("/skills", a.uploadSkill)
	g.GET("/skills", a.listSkills)
	g.GET("/skills/:id", a.getSkill)
	g.GET("/snapshots", a.listSnapshots)
	g.GET("/snapshots/activations", a.listActivations)
	g.GET("/snapshots/:id", a.getSnapshot)
	g.POST("/snapshots/:id/activate", a.activateSnapshot)
	g.POST("/snapshots/rollback", a.rollbackSnapshot)
	g.GET("/usage", a.usage)
}

// actor is the admin acting (set by the API's authentication).
func actor(c echo.Context) string {
	p, _ := auth.PrincipalFrom(c.Request().Context())
	return p.UserID
}
