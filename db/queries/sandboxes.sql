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

-- name: PastGeneration :one
-- The highest generation a new sandbox of an entity must stay above, so its
-- deterministic name never lands on a sandbox the entity must not adopt:
-- every sandbox that is gone; every sandbox of an earlier life of the thread
-- (created before the thread was last created or revived: its destroy may
-- have failed, and the reconciler may be deleting it); and the generation
-- the thread row remembers from its earlier lives (a create whose result was
-- lost left no sandbox row). Sandboxes of the current life that still exist
-- do not count, so a retried create finds its own.
WITH life AS (
    SELECT t.created_at, t.generation FROM threads t
    WHERE @sandbox_type::text = 'agent' AND t.user_id = @user_id::text AND t.thread_id = @thread_id::text
)
SELECT greatest(
    (SELECT coalesce(max(s.generation), 0) FROM sandboxes s
     WHERE s.sandbox_type = @sandbox_type::text AND s.user_id = @user_id::text
       AND coalesce(s.thread_id, '') = @thread_id::text
       AND (s.deleted_at IS NOT NULL OR s.created_at < (SELECT created_at FROM life))),
    (SELECT coalesce(max(generation), 0) FROM life)
)::int AS generation;

-- name: ActiveSnapshotName :one
-- The Daytona name of the active skills snapshot new agent sandboxes use.
SELECT daytona_name FROM snapshots WHERE active AND state = 'ready' LIMIT 1;
