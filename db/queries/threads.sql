-- Threads: rows are created by the API (POST /v1/threads) and kept up to date
-- by the thread workflow's activities on every lifecycle transition.
--
-- state is what a client sees: creating, running, stopped, error while the
-- thread lives ('stopped' with sandbox_id NULL after an auto-delete: the next
-- use creates a new sandbox), and 'deleted' only once the user deleted it.

-- name: CreateThread :one
-- Inserts a new thread, or revives a deleted one (a new life: created_at is
-- when it began, and the generation is kept so sandbox names never repeat).
-- No row (pgx.ErrNoRows) means the thread already exists and is not deleted:
-- read it with GetThread.
INSERT INTO threads (user_id, thread_id, state)
VALUES ($1, $2, 'creating')
ON CONFLICT (user_id, thread_id) DO UPDATE
    SET state = 'creating', sandbox_id = NULL, snapshot = NULL, error_message = NULL,
        last_activity_at = NULL, auto_stop_at = NULL, auto_delete_at = NULL,
        created_at = now(), updated_at = now()
    WHERE threads.state = 'deleted'
RETURNING *;

-- name: GetThread :one
SELECT * FROM threads WHERE user_id = $1 AND thread_id = $2;

-- name: UpdateThreadLifecycle :execrows
-- Written by the workflow's ledger activity on every transition. A thread the
-- user deleted is never brought back by a late write: only the API revives it.
UPDATE threads
SET state = @state, sandbox_id = @sandbox_id, generation = @generation, snapshot = @snapshot,
    last_activity_at = @last_activity_at, auto_stop_at = @auto_stop_at,
    auto_delete_at = @auto_delete_at, error_message = @error_message, updated_at = now()
WHERE user_id = @user_id AND thread_id = @thread_id
  AND (state <> 'deleted' OR @state::text = 'deleted');
