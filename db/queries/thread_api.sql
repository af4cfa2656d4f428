-- Queries of the thread REST API (api/threads*.go). They are kept apart from
-- threads.sql (owned by the thread workflow's activities) so each side can
-- evolve its statements without touching the other's.

-- name: APICreateOrReviveThread :one
-- Inserts a new thread, or revives one the user deleted. No row
-- (pgx.ErrNoRows) means the thread already exists and is live: the caller
-- answers 200 instead of 201. The generation is kept on revive so sandbox
-- names never repeat across the thread's lives.
INSERT INTO threads (user_id, thread_id, state)
VALUES (@user_id, @thread_id, 'creating')
ON CONFLICT (user_id, thread_id) DO UPDATE
    SET state = 'creating', sandbox_id = NULL, snapshot = NULL, error_message = NULL,
        last_activity_at = NULL, auto_stop_at = NULL, auto_delete_at = NULL,
        created_at = now(), updated_at = now()
    WHERE threads.state = 'deleted'
RETURNING *;

-- name: APIGetThread :one
SELECT * FROM threads WHERE user_id = @user_id AND thread_id = @thread_id;

-- name: APIListThreads :many
-- A user's threads, oldest first; deleted ones only when asked for.
SELECT * FROM threads
WHERE user_id = @user_id AND (@include_deleted::boolean OR state <> 'deleted')
ORDER BY created_at, thread_id;

-- name: APIMarkThreadDeleted :execrows
-- Marks a live thread deleted before its workflow is told to destroy the
-- sandbox, so no request that checks the row afterwards can start the thread
-- again. Zero rows: the thread is missing or already deleted.
UPDATE threads
SET state = 'deleted', auto_stop_at = NULL, auto_delete_at = NULL, updated_at = now()
WHERE user_id = @user_id AND thread_id = @thread_id AND state <> 'deleted';
