package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/auth"
)

// KeyRoutes serve /v1/admin/keys: issue, list, show and revoke API keys,
// the same operations as `threadbox apikey`. A revoked key is refused by
// every API replica within auth.CacheTTL.
type KeyRoutes struct {
	Keys *auth.Store
}

// Register adds the key routes to the /v1/admin group.
func (k *KeyRoutes) Register(g *echo.Group) {
	g.POST("/keys", k.create)
	g.GET("/keys", k.list)
	g.GET("/keys/:id", k.get)
	g.DELETE("/keys/:id", k.revoke)
}

type createKeyRequest struct {
	UserID    string     `json:"user_id"`
	Admin     bool       `json:"admin"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// createdKey is the one answer that carries a key in clear.
type createdKey struct {
	Key string `json:"key"`
	auth.KeyInfo
}

type keyList struct {
	Keys []auth.KeyInfo `json:"keys"`
}

// create is POST /v1/admin/keys {"user_id", "admin"?, "expires_at"?}: 201
// with the key in clear (shown once) and its description.
func (k *KeyRoutes) create(c echo.Context) error {
	var req createKeyRequest
	if err := httpio.DecodeJSON(c, &req); err != nil {
		return err
	}
	if err := auth.ValidUserID(req.UserID); err != nil {
		return apierr.BadRequest("invalid_user_id", err.Error())
	}
	spec := auth.Spec{UserID: req.UserID, Admin: req.Admin}
	if req.ExpiresAt != nil {
		if !req.ExpiresAt.After(time.Now()) {
			return apierr.BadRequest("invalid_expiry", "expires_at must be in the future")
		}
		spec.ExpiresAt = *req.ExpiresAt
	}
	ctx := c.Request().Context()
	key, row, err := k.Keys.Issue(ctx, spec)
	if err != nil {
		return err
	}
	info, err := k.Keys.Get(ctx, row.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, createdKey{Key: key, KeyInfo: info})
}

// list is GET /v1/admin/keys[?user_id=U][&include_inactive=true]: active
// keys (and revoked or expired ones when asked), oldest first.
func (k *KeyRoutes) list(c echo.Context) error {
	user := c.QueryParam("user_id")
	if user != "" {
		if err := auth.ValidUserID(user); err != nil {
			return apierr.BadRequest("invalid_user_id", err.Error())
		}
	}
	all := false
	if v := c.QueryParam("include_inactive"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return apierr.BadRequest("invalid_parameter", "include_inactive must be true or false")
		}
		all = b
	}
	keys, err := k.Keys.List(c.Request().Context(), user, all)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, keyList{Keys: keys})
}

// get is GET /v1/admin/keys/{id}.
func (k *KeyRoutes) get(c echo.Context) error {
	id, err := keyID(c)
	if err != nil {
		return err
	}
	info, err := k.Keys.Get(c.Request().Context(), id)
	if err != nil {
		return keyError(err)
	}
	return c.JSON(http.StatusOK, info)
}

// revoke is DELETE /v1/admin/keys/{id}: 204 once the key is revoked (also
// when it already was), 404 for an unknown id.
func (k *KeyRoutes) revoke(c echo.Context) error {
	id, err := keyID(c)
	if err != nil {
		return err
	}
	if _, err := k.Keys.Revoke(c.Request().Context(), id); err != nil {
		return keyError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func keyID(c echo.Context) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return uuid.UUID{}, apierr.NotFound("no such api key")
	}
	return id, nil
}

func keyError(err error) error {
	if errors.Is(err, auth.ErrKeyNotFound) {
		return apierr.NotFound("no such api key")
	}
	return fmt.Errorf("api key: %w", err)
}
