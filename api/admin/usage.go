package admin

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/usage"
)

// usage is GET /v1/admin/usage?from=&to=[&user=]: the seconds sandboxes ran
// in [from, to), per user and per thread, and how many of them ran past the
// policy (late stops), read from the lifecycle ledger (package usage).
func (a *Routes) usage(c echo.Context) error {
	from, to, err := usage.ParsePeriod(c.QueryParam("from"), c.QueryParam("to"))
	if err != nil {
		return apierr.BadRequest("invalid_period", err.Error())
	}
	user := c.QueryParam("user")
	if user != "" {
		if err := auth.ValidUserID(user); err != nil {
			return apierr.BadRequest("invalid_user", err.Error())
		}
	}
	rep, err := usage.Read(c.Request().Context(), a.Queries, from, to, time.Now(), user)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}
