-- Background commands of threads (package command). Every read is scoped to
-- the caller's user and thread, and to the thread's current life: a command
-- of a deleted thread, or of its life before it was deleted and created
-- again, is not found.

-- name: CommandInsert :one
INSERT INTO thread_commands (user_id, thread_id, command_id, command, cwd, timeout_s,
                             sandbox_id, daytona_command_id, state, started_at, deadline_at)
VALUES (@user_id, @thread_id, @command_id, @command, @cwd, @timeout_s,
        @sandbox_id, @daytona_command_id, 'running', now(), now() + make_interval(secs => @timeout_s::integer))
RETURNING *;

-- name: CommandGet :one
SELECT c.* FROM thread_commands c
WHERE c.user_id = @user_id AND c.thread_id = @thread_id AND c.command_id = @command_id
  AND EXISTS (SELECT 1 FROM threads t
              WHERE t.user_id = c.user_id AND t.thread_id = c.thread_id
                AND t.state <> 'deleted' AND c.started_at >= t.created_at);

-- name: CommandList :many
-- A thread's commands, newest first.
SELECT c.* FROM thread_commands c
WHERE c.user_id = @user_id AND c.thread_id = @thread_id
  AND EXISTS (SELECT 1 FROM threads t
              WHERE t.user_id = c.user_id AND t.thread_id = c.thread_id
                AND t.state <> 'deleted' AND c.started_at >= t.created_at)
ORDER BY c.started_at DESC, c.command_id;

-- name: CommandCountRunning :one
SELECT count(*) FROM thread_commands c
WHERE c.user_id = @user_id AND c.thread_id = @thread_id AND c.state = 'running'
  AND EXISTS (SELECT 1 FROM threads t
              WHERE t.user_id = c.user_id AND t.thread_id = c.thread_id
                AND t.state <> 'deleted' AND c.started_at >= t.created_at);

-- name: CommandFinish :one
-- Records how a running command ended: @state is 'exited' (its exit code is
-- known) or 'lost' (it is not, and never will be). An exit the caller asked
-- for with a stop is 'killed'; 124 or 137 at its deadline is the sandbox's
-- timeout(1) ('timed_out'; the deadline was taken just after the sandbox
-- started the clock, hence the tolerance). No row (pgx.ErrNoRows): it was
-- recorded already (by another replica, or a concurrent read), or is gone.
UPDATE thread_commands
SET state = CASE
        WHEN @state::text = 'lost' THEN 'lost'
        WHEN stop_requested THEN 'killed'
        WHEN @exit_code::bigint IN (124, 137) AND now() >= deadline_at - interval '2 seconds' THEN 'timed_out'
        ELSE 'exited' END,
    exit_code = @exit_code, output = @output, truncated = @truncated, finished_at = now()
WHERE user_id = @user_id AND thread_id = @thread_id AND command_id = @command_id AND state = 'running'
RETURNING *;

-- name: CommandRequestStop :execrows
UPDATE thread_commands SET stop_requested = true
WHERE user_id = @user_id AND thread_id = @thread_id AND command_id = @command_id AND state = 'running';

-- name: CommandPrune :execrows
-- Keeps the newest @keep ended commands of a thread (running ones are
-- always kept), so stored output stays bounded per thread.
DELETE FROM thread_commands c
WHERE c.user_id = @user_id AND c.thread_id = @thread_id AND c.state <> 'running'
  AND c.command_id NOT IN (
      SELECT k.command_id FROM thread_commands k
      WHERE k.user_id = @user_id AND k.thread_id = @thread_id AND k.state <> 'running'
      ORDER BY k.started_at DESC LIMIT @keep);

-- name: CommandDeleteForThread :execrows
-- Drops a deleted thread's commands (its sandbox, and every process in it,
-- is destroyed with the thread).
DELETE FROM thread_commands WHERE user_id = @user_id AND thread_id = @thread_id;
