-- Skills: every upload is a new version of its skill name. Rows are created
-- by the API (POST /v1/admin/skills) and moved validating → valid|invalid by
-- the validation workflow, and valid → published when a snapshot holding
-- them becomes active. The archive column is read only by activities.

-- name: LockSkillName :exec
-- Serialises version allocation per skill name for the rest of the transaction.
SELECT pg_advisory_xact_lock(hashtext('threadbox:skill:' || @name::text));

-- name: NextSkillVersion :one
SELECT (coalesce(max(version), 0) + 1)::int AS version FROM skills WHERE name = @name;

-- name: CreateSkill :one
INSERT INTO skills (id, name, version, description, status, archive, archive_format, manifest, workflow_id, created_by)
VALUES (@id, @name, @version, @description, 'validating', @archive, @archive_format, @manifest, @workflow_id, @created_by)
RETURNING id, name, version, description, status, manifest, validation_log, snapshot_id, workflow_id, created_by, created_at, updated_at;

-- name: GetSkill :one
SELECT id, name, version, description, status, manifest, validation_log, snapshot_id, workflow_id, created_by, created_at, updated_at
FROM skills WHERE id = @id;

-- name: ListSkills :many
SELECT id, name, version, description, status, manifest, validation_log, snapshot_id, workflow_id, created_by, created_at, updated_at
FROM skills
WHERE (sqlc.narg(name)::text IS NULL OR name = sqlc.narg(name)::text)
ORDER BY name, version DESC;

-- name: GetSkillArchive :one
SELECT id, name, version, archive FROM skills WHERE id = @id;

-- name: FinishSkillValidation :execrows
-- Only a skill still validating changes, so a retried activity or a late
-- duplicate never overwrites a result.
UPDATE skills SET status = @status, validation_log = @validation_log, updated_at = now()
WHERE id = @id AND status = 'validating';

-- name: BuildSkillSet :many
-- What a snapshot build bakes in: the newest valid-or-published version of
-- every skill name.
SELECT DISTINCT ON (name) id, name, version
FROM skills
WHERE status IN ('valid', 'published')
ORDER BY name, version DESC;

-- name: PublishSkills :execrows
-- Marks the valid skills of a snapshot that just became active as published in it.
UPDATE skills SET status = 'published', snapshot_id = @snapshot_id, updated_at = now()
WHERE id = ANY(@ids::uuid[]) AND status = 'valid';
