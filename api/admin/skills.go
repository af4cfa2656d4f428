package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/skills"
	"github.com/threadbox/threadbox/workflows"
)

// skillResponse is a skill version as admins see it (never the archive).
type skillResponse struct {
	SkillID       string          `json:"skill_id"`
	Name          string          `json:"name"`
	Version       int32           `json:"version"`
	Description   string          `json:"description"`
	Status        string          `json:"status"`
	ValidationLog string          `json:"validation_log"`
	SnapshotID    *int64          `json:"snapshot_id"`
	WorkflowID    string          `json:"workflow_id"`
	Manifest      json.RawMessage `json:"manifest"`
	CreatedBy     string          `json:"created_by"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
}

func toSkillResponse(r db.GetSkillRow) skillResponse {
	m := json.RawMessage(r.Manifest)
	if len(m) == 0 {
		m = json.RawMessage("{}")
	}
	return skillResponse{
		SkillID: r.ID.String(), Name: r.Name, Version: r.Version, Description: r.Description, Status: r.Status,
		ValidationLog: r.ValidationLog, SnapshotID: r.SnapshotID, WorkflowID: r.WorkflowID, Manifest: m,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

type uploadSkillResponse struct {
	SkillID    string `json:"skill_id"`
	Name       string `json:"name"`
	Version    int32  `json:"version"`
	Status     string `json:"status"`
	WorkflowID string `json:"workflow_id"`
}

// uploadSkill (POST /v1/admin/skills) checks the archive in multipart field
// "file" before anything runs, stores it as the next version of its skill and
// starts its validation workflow: 202 {"skill_id","status","workflow_id"}.
func (a *Routes) uploadSkill(c echo.Context) error {
	lim := skills.DefaultLimits()
	data, err := readArchivePart(c, lim.MaxArchiveBytes)
	if err != nil {
		return err
	}
	bundle, err := skills.Parse(data, lim)
	if err != nil {
		return fmt.Errorf("skill archive: %w", err)
	}
	manifest, err := json.Marshal(bundle.Manifest)
	if err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	ctx := c.Request().Context()
	actor := actor(c)
	row, err := a.createSkillVersion(ctx, bundle, data, manifest, actor)
	if err != nil {
		return err
	}
	if err := a.startSkillValidation(ctx, row, actor); err != nil {
		// Never leave a row validating that no workflow will finish.
		_, _ = a.Queries.FinishSkillValidation(context.WithoutCancel(ctx), db.FinishSkillValidationParams{
			ID: row.ID, Status: "invalid", ValidationLog: "the validation workflow could not be started; upload the skill again\n",
		})
		return fmt.Errorf("starting skill validation: %w", err)
	}
	return c.JSON(http.StatusAccepted, uploadSkillResponse{
		SkillID: row.ID.String(), Name: row.Name, Version: row.Version, Status: row.Status, WorkflowID: row.WorkflowID,
	})
}

// readArchivePart streams the multipart body to the "file" part and reads it
// under the cap (413 above it); other parts are skipped.
func readArchivePart(c echo.Context, maxBytes int64) ([]byte, error) {
	req := c.Request()
	req.Body = http.MaxBytesReader(c.Response(), req.Body, maxBytes+(1<<20))
	mr, err := req.MultipartReader()
	if err != nil {
		return nil, apierr.BadRequest("multipart_required", "send the archive as multipart/form-data field \"file\"")
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, apierr.BadRequest("missing_file", "the multipart field \"file\" is missing")
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, apierr.TooLarge(fmt.Sprintf("the archive is larger than %d bytes", maxBytes))
			}
			return nil, apierr.BadRequest("bad_multipart", "the multipart body is malformed")
		}
		if part.FormName() != "file" {
			_, _ = io.Copy(io.Discard, part)
			continue
		}
		data, err := io.ReadAll(io.LimitReader(part, maxBytes+1))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, apierr.TooLarge(fmt.Sprintf("the archive is larger than %d bytes", maxBytes))
			}
			return nil, apierr.BadRequest("bad_multipart", "the multipart body is malformed")
		}
		if int64(len(data)) > maxBytes {
			return nil, apierr.TooLarge(fmt.Sprintf("the archive is larger than %d bytes", maxBytes))
		}
		if len(data) == 0 {
			return nil, apierr.BadRequest("missing_file", "the uploaded file is empty")
		}
		return data, nil
	}
}

// createSkillVersion stores the archive as the next version of its skill; the
// per-name advisory lock makes concurrent uploads of one name get distinct,
// consecutive versions.
func (a *Routes) createSkillVersion(ctx context.Context, b *skills.Bundle, archive, manifest []byte, actor string) (db.CreateSkillRow, error) {
	tx, err := a.Pool.Begin(ctx)
	if err != nil {
		return db.CreateSkillRow{}, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	q := a.Queries.WithTx(tx)
	name := b.Manifest.Name
	if err := q.LockSkillName(ctx, name); err != nil {
		return db.CreateSkillRow{}, fmt.Errorf("locking skill name: %w", err)
	}
	version, err := q.NextSkillVersion(ctx, name)
	if err != nil {
		return db.CreateSkillRow{}, fmt.Errorf("next skill version: %w", err)
	}
	row, err := q.CreateSkill(ctx, db.CreateSkillParams{
		ID: uuid.New(), Name: name, Version: version, Description: b.Manifest.Description,
		Archive: archive, ArchiveFormat: string(b.Format), Manifest: manifest,
		WorkflowID: workflows.SkillWorkflowID(name, int(version)), CreatedBy: actor,
	})
	if err != nil {
		return db.CreateSkillRow{}, fmt.Errorf("storing skill: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return db.CreateSkillRow{}, fmt.Errorf("commit: %w", err)
	}
	return row, nil
}

func (a *Routes) startSkillValidation(ctx context.Context, row db.CreateSkillRow, actor string) error {
	if a.Temporal == nil {
		return errors.New("no Temporal client configured")
	}
	_, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:            row.WorkflowID,
		TaskQueue:     a.Config.TemporalTaskQueue,
		StaticSummary: fmt.Sprintf("validate skill %s v%d", row.Name, row.Version),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			entity.AttrUserID.ValueSet(actor),
			workflows.AttrSkillName.ValueSet(row.Name),
		),
	}, workflows.SkillValidationWorkflowName, workflows.SkillValidationInput{
		SkillID: row.ID.String(), Name: row.Name, Version: int(row.Version), Actor: actor,
	})
	return err
}

type skillListResponse struct {
	Skills []skillResponse `json:"skills"`
}

// listSkills (GET /v1/admin/skills[?name=N]) lists every skill version,
// newest version first per name.
func (a *Routes) listSkills(c echo.Context) error {
	var name *string
	if n := c.QueryParam("name"); n != "" {
		name = &n
	}
	rows, err := a.Queries.ListSkills(c.Request().Context(), name)
	if err != nil {
		return fmt.Errorf("listing skills: %w", err)
	}
	out := skillListResponse{Skills: make([]skillResponse, 0, len(rows))}
	for _, r := range rows {
		out.Skills = append(out.Skills, toSkillResponse(db.GetSkillRow(r)))
	}
	return c.JSON(http.StatusOK, out)
}

// getSkill (GET /v1/admin/skills/{id}) shows one version with its status,
// validation log and snapshot_id.
func (a *Routes) getSkill(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return apierr.NotFound("no such skill")
	}
	row, err := a.Queries.GetSkill(c.Request().Context(), id)
	if errors.Is(err, pgx.ErrNoRows) {
		return apierr.NotFound("no such skill")
	}
	if err != nil {
		return fmt.Errorf("reading skill: %w", err)
	}
	return c.JSON(http.StatusOK, toSkillResponse(row))
}

// mustUUID parses an id that came from the database.
func mustUUID(s string) uuid.UUID {
	id, _ := uuid.Parse(s)
	return id
}
