package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/workflows"
)

// baseSnapshotID is the id under which the base snapshot (DAYTONA_BASE_SNAPSHOT)
// appears as the implicit version 0: active while no built version is, and a
// valid target of activate and rollback. This keeps "exactly one version is
// active" true from the first start on.
const baseSnapshotID = 0

// snapshotResponse is a snapshot version as admins see it.
type snapshotResponse struct {
	ID          int64      `json:"id"`
	Version     int32      `json:"version"`
	DaytonaName string     `json:"daytona_name"`
	State       string     `json:"state"`
	Active      bool       `json:"active"`
	Base        bool       `json:"base"`
	SkillIDs    []string   `json:"skill_ids"`
	Skills      []skillRef `json:"skills,omitempty"`
	Error       *string    `json:"error,omitempty"`
	WorkflowID  string     `json:"workflow_id,omitempty"`
	BuiltFromID *int64     `json:"built_from_id,omitempty"`
	CreatedBy   string     `json:"created_by,omitempty"`
	CreatedAt   *time.Time `json:"created_at,omitempty"`
	ReadyAt     *time.Time `json:"ready_at,omitempty"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	// Audit lists the activation rows that moved the pointer to or from this
	// version (detail view only).
	Audit []activationResponse `json:"audit,omitempty"`
}

type skillRef struct {
	SkillID string `json:"skill_id"`
	Name    string `json:"name"`
	Version int32  `json:"version"`
}

type activationResponse struct {
	ID         int64     `json:"id"`
	FromID     int64     `json:"from_snapshot_id"`
	ToID       int64     `json:"to_snapshot_id"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason"`
	Outcome    string    `json:"outcome"`
	WorkflowID string    `json:"workflow_id"`
	CreatedAt  time.Time `json:"created_at"`
}

func idOrBase(id *int64) int64 {
	if id == nil {
		return baseSnapshotID
	}
	return *id
}

func toActivationResponse(r db.SnapshotActivation) activationResponse {
	return activationResponse{
		ID: r.ID, FromID: idOrBase(r.FromSnapshotID), ToID: idOrBase(r.ToSnapshotID), Actor: r.Actor,
		Reason: r.Reason, Outcome: r.Outcome, WorkflowID: r.WorkflowID, CreatedAt: r.CreatedAt,
	}
}

func toSnapshotResponse(r db.Snapshot) snapshotResponse {
	out := snapshotResponse{
		ID: r.ID, Version: r.Version, DaytonaName: r.DaytonaName, State: r.State, Active: r.Active,
		SkillIDs: make([]string, 0, len(r.SkillIds)), Error: r.ErrorMessage, WorkflowID: r.WorkflowID,
		BuiltFromID: r.BuiltFromID, CreatedBy: r.CreatedBy, CreatedAt: &r.CreatedAt, ReadyAt: r.ReadyAt, ActivatedAt: r.ActivatedAt,
	}
	for _, id := range r.SkillIds {
		out.SkillIDs = append(out.SkillIDs, id.String())
	}
	return out
}

func (a *Routes) baseSnapshot(active bool) snapshotResponse {
	return snapshotResponse{ID: baseSnapshotID, Version: 0, DaytonaName: a.Config.BaseSnapshot, State: "ready", Active: active, Base: true, SkillIDs: []string{}}
}

type snapshotListResponse struct {
	Snapshots []snapshotResponse `json:"snapshots"`
	ActiveID  int64              `json:"active_id"`
}

// listSnapshots (GET /v1/admin/snapshots) lists every version, newest first,
// ending with the base snapshot as version 0; exactly one is active.
func (a *Routes) listSnapshots(c echo.Context) error {
	rows, err := a.Queries.ListSnapshots(c.Request().Context())
	if err != nil {
		return fmt.Errorf("listing snapshots: %w", err)
	}
	out := snapshotListResponse{Snapshots: make([]snapshotResponse, 0, len(rows)+1)}
	anyActive := false
	for _, r := range rows {
		out.Snapshots = append(out.Snapshots, toSnapshotResponse(r))
		if r.Active {
			anyActive, out.ActiveID = true, r.ID
		}
	}
	out.Snapshots = append(out.Snapshots, a.baseSnapshot(!anyActive))
	return c.JSON(http.StatusOK, out)
}

// parseSnapshotID reads the {id} path parameter; anything but a
// non-negative integer is an unknown snapshot.
func parseSnapshotID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 0 {
		return 0, apierr.NotFound("no such snapshot")
	}
	return id, nil
}

// loadSnapshot returns a version (or the base) with its active flag.
func (a *Routes) loadSnapshot(ctx context.Context, id int64) (snapshotResponse, error) {
	if id == baseSnapshotID {
		_, err := a.Queries.GetActiveSnapshot(ctx)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return a.baseSnapshot(true), nil
		case err != nil:
			return snapshotResponse{}, fmt.Errorf("reading active snapshot: %w", err)
		}
		return a.baseSnapshot(false), nil
	}
	row, err := a.Queries.GetSnapshot(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return snapshotResponse{}, apierr.NotFound("no such snapshot")
	}
	if err != nil {
		return snapshotResponse{}, fmt.Errorf("reading snapshot: %w", err)
	}
	return toSnapshotResponse(row), nil
}

// getSnapshot (GET /v1/admin/snapshots/{id}) shows one version with its
// skills and its audit rows.
func (a *Routes) getSnapshot(c echo.Context) error {
	id, err := parseSnapshotID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	out, err := a.loadSnapshot(ctx, id)
	if err != nil {
		return err
	}
	for _, sid := range out.SkillIDs {
		row, err := a.Queries.GetSkill(ctx, mustUUID(sid))
		if err != nil {
			return fmt.Errorf("reading skill %s: %w", sid, err)
		}
		out.Skills = append(out.Skills, skillRef{SkillID: sid, Name: row.Name, Version: row.Version})
	}
	acts, err := a.Queries.ListSnapshotActivations(ctx, 1000)
	if err != nil {
		return fmt.Errorf("reading audit: %w", err)
	}
	for _, a := range acts {
		if idOrBase(a.FromSnapshotID) == id || idOrBase(a.ToSnapshotID) == id {
			out.Audit = append(out.Audit, toActivationResponse(a))
		}
	}
	return c.JSON(http.StatusOK, out)
}

type activationListResponse struct {
	Activations []activationResponse `json:"activations"`
}

// listActivations (GET /v1/admin/snapshots/activations) is the audit trail
// of the active pointer, newest first.
func (a *Routes) listActivations(c echo.Context) error {
	rows, err := a.Queries.ListSnapshotActivations(c.Request().Context(), 1000)
	if err != nil {
		return fmt.Errorf("reading audit: %w", err)
	}
	out := activationListResponse{Activations: make([]activationResponse, 0, len(rows))}
	for _, a := range rows {
		out.Activations = append(out.Activations, toActivationResponse(a))
	}
	return c.JSON(http.StatusOK, out)
}

type activateRequest struct {
	Reason string `json:"reason"`
}

type rollbackRequest struct {
	To     *int64 `json:"to"`
	Reason string `json:"reason"`
}

type workflowResponse struct {
	WorkflowID string `json:"workflow_id"`
	SnapshotID int64  `json:"snapshot_id"`
}

// decodeOptionalJSON is decodeJSON for routes whose body may be omitted.
func decodeOptionalJSON(c echo.Context, v any) error {
	req := c.Request()
	if req.ContentLength == 0 && req.Header.Get(echo.HeaderContentType) == "" {
		return nil
	}
	return httpio.DecodeJSON(c, v)
}

// activateSnapshot (POST /v1/admin/snapshots/{id}/activate) starts the
// activation workflow for a ready version (or 0, the base): 202 {workflow_id}.
func (a *Routes) activateSnapshot(c echo.Context) error {
	id, err := parseSnapshotID(c)
	if err != nil {
		return err
	}
	var body activateRequest
	if err := decodeOptionalJSON(c, &body); err != nil {
		return err
	}
	reason := body.Reason
	if reason == "" {
		reason = fmt.Sprintf("activate snapshot %d", id)
	}
	now := time.Now()
	return a.startActivation(c, id, workflows.SnapshotActivateWorkflowID(id, now), reason)
}

// rollbackSnapshot (POST /v1/admin/snapshots/rollback {"to"?: id}) starts the
// activation workflow for "to", or for the version active before the current
// one (the "from" of the latest activation): 202 {workflow_id}.
func (a *Routes) rollbackSnapshot(c echo.Context) error {
	var body rollbackRequest
	if err := decodeOptionalJSON(c, &body); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var target int64
	if body.To != nil {
		if *body.To < 0 {
			return apierr.BadRequest("bad_snapshot_id", "\"to\" must be a snapshot id (0 is the base snapshot)")
		}
		target = *body.To
	} else {
		last, err := a.Queries.LastActivation(ctx)
		if errors.Is(err, pgx.ErrNoRows) {
			return apierr.Conflict("nothing_to_roll_back", "no snapshot was ever activated; there is nothing to roll back to")
		}
		if err != nil {
			return fmt.Errorf("reading audit: %w", err)
		}
		target = idOrBase(last.FromSnapshotID)
	}
	reason := body.Reason
	if reason == "" {
		reason = fmt.Sprintf("rollback to snapshot %d", target)
	} else {
		reason = "rollback: " + reason
	}
	return a.startActivation(c, target, workflows.SnapshotRollbackWorkflowID(time.Now()), reason)
}

// startActivation checks the target is usable and not already active, then
// starts SnapshotActivationWorkflow under workflowID.
func (a *Routes) startActivation(c echo.Context, id int64, workflowID, reason string) error {
	ctx := c.Request().Context()
	snap, err := a.loadSnapshot(ctx, id)
	if err != nil {
		if e := (*apierr.Error)(nil); errors.As(err, &e) && e.Status == http.StatusNotFound {
			return apierr.NotFound(fmt.Sprintf("no snapshot %d", id))
		}
		return err
	}
	if snap.State != "ready" {
		return apierr.Conflict("snapshot_not_ready", fmt.Sprintf("snapshot %d is %s; only ready versions can be activated", id, snap.State))
	}
	if snap.Active {
		return apierr.Conflict("already_active", fmt.Sprintf("snapshot %d is already active", id))
	}
	if a.Temporal == nil {
		return errors.New("no Temporal client configured")
	}
	actor := actor(c)
	_, err = a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    workflowID,
		TaskQueue:             a.Config.TemporalTaskQueue,
		StaticSummary:         reason,
		TypedSearchAttributes: temporal.NewSearchAttributes(entity.AttrUserID.ValueSet(actor), workflows.AttrSnapshotVersion.ValueSet(strconv.Itoa(int(snap.Version)))),
	}, workflows.SnapshotActivationWorkflowName, workflows.ActivationInput{SnapshotID: id, Actor: actor, Reason: reason})
	if err != nil {
		return fmt.Errorf("starting activation: %w", err)
	}
	return c.JSON(http.StatusAccepted, workflowResponse{WorkflowID: workflowID, SnapshotID: id})
}
