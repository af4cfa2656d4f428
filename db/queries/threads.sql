-- Threads: rows are created by the API (POST /v1/threads) and kept up to date
-- by the thread workflow's activities on every lifecycle transition.
--
-- state is what a client sees: creating, running, stopped, error while the
-- thread lives ('stopped' with sandbox_id NULL after an auto-delete: the next
-- use creates a new sandbox), and 'deleted' only once the user deleted it.

-- name: UpdateThreadLifecycle :execrows
-- Written by the workflow's ledger activity on every transition. A thread the
-- user deleted is never brought back by a late write: only the API revives it.
UPDATE threads
SET state = @state, sandbox_id = @sandbox_id, generation = @generation, snapshot = @snapshot,
    last_activity_at = @last_activity_at, auto_stop_at = @auto_stop_at,
    auto_delete_at = @auto_delete_at, error_message = @error_message, updated_at = now()
WHERE user_id = @user_id AND thread_id = @thread_id
  AND (state <> 'deleted' OR @state::text = 'deleted');
