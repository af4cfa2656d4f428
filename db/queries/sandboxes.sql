-- Every sandbox threadbox created, written by the entity activities.

-- name: UpsertSandbox :exec
INSERT INTO sandboxes (sandbox_id, name, sandbox_type, user_id, thread_id, generation, snapshot, state)
VALUES (@sandbox_id, @name, @sandbox_type, @user_id, @thread_id, @generation, @snapshot, @state)
ON CONFLICT (sandbox_id) DO UPDATE
    SET state = EXCLUDED.state, snapshot = EXCLUDED.snapshot, updated_at = now(), deleted_at = NULL;

-- name: SetSandboxState :execrows
UPDATE sandboxes
SET state = @state, updated_at = now(),
    deleted_at = CASE WHEN @state::text = 'deleted' THEN coalesce(deleted_at, now()) ELSE deleted_at END
WHERE sandbox_id = @sandbox_id;

-- name: GetSandboxRow :one
SELECT * FROM sandboxes WHERE sandbox_id = $1;

-- name: MaxDeletedGeneration :one
-- The highest generation of an entity's sandboxes that are gone, so a new
-- workflow run (after a user delete and re-create) never reuses the name of a
-- destroyed sandbox.
SELECT coalesce(max(generation), 0)::int AS generation
FROM sandboxes
WHERE sandbox_type = @sandbox_type AND user_id = @user_id
  AND coalesce(thread_id, '') = @thread_id::text AND deleted_at IS NOT NULL;

-- name: ActiveSnapshotName :one
-- The Daytona name of the active skills snapshot new agent sandboxes use.
SELECT daytona_name FROM snapshots WHERE active AND state = 'ready' LIMIT 1;
