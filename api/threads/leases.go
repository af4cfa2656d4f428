package threads

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/entity"
)

// maxLeaseTTL bounds a client lease: long enough for an agent turn or a
// long job, short enough that a forgotten lease does not keep a sandbox (and
// its cost) alive for days. It is the workflow's own limit.
const maxLeaseTTL = entity.MaxLeaseTTL

type leaseRequest struct {
	TTLS *int64 `json:"ttl_s"`
}

type leaseResponse struct {
	LeaseID   string    `json:"lease_id"`
	ExpiresAt time.Time `json:"expires_at"`
	SandboxID string    `json:"sandbox_id"`
}

// createLease is POST /v1/threads/{id}/leases: ensure-running with a lease,
// so the sandbox is running when the answer arrives and is not auto-stopped
// before expires_at (unless the lease is released). 201.
func (t *Routes) createLease(c echo.Context) error {
	var req leaseRequest
	if err := httpio.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.TTLS == nil || *req.TTLS <= 0 || *req.TTLS > int64(maxLeaseTTL/time.Second) {
		return apierr.BadRequest("invalid_ttl", "ttl_s must be a whole number of seconds between 1 and "+strconv.FormatInt(int64(maxLeaseTTL/time.Second), 10))
	}
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := t.guard(ref)(ctx); err != nil {
		return err
	}
	ttl := time.Duration(*req.TTLS) * time.Second
	id := "lease-" + uuid.NewString()
	start := time.Now()
	res, err := t.Sandboxes.Lease(ctx, ref, id, ttl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, leaseResponse{LeaseID: id, ExpiresAt: start.Add(ttl).UTC(), SandboxID: res.SandboxID})
}

// releaseLease is DELETE /v1/threads/{id}/leases/{lease_id}: 204, or 404 for
// a lease the thread does not hold (unknown, expired or already released),
// which is read from the workflow's state query. The release is a use: the
// idle timer counts from it.
func (t *Routes) releaseLease(c echo.Context) error {
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	leaseID := c.Param("lease_id")
	if !strings.HasPrefix(leaseID, "lease-") || len(leaseID) > 64 {
		return apierr.NotFound("lease not found")
	}
	ctx := c.Request().Context()
	if _, err := t.guard(ref)(ctx); err != nil {
		return err
	}
	held, err := t.Sandboxes.HoldsLease(ctx, ref, leaseID)
	if err != nil {
		return err
	}
	if !held {
		return apierr.NotFound("lease not found")
	}
	if err := t.Sandboxes.ReleaseLease(ctx, ref, leaseID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
