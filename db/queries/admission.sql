-- Admission (package admission): the limits on threads and running sandboxes,
-- counted in PostgreSQL so that they hold across API replicas. Each decision
-- runs in a transaction that first takes an advisory lock, so two replicas
-- never both admit the last free place.

-- name: AdmissionLockUserThreads :exec
-- Serialises thread creation per user until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('threadbox:threads:' || @user_id::text, 0));

-- name: AdmissionLockSandboxes :exec
-- Serialises sandbox admission (the total limit is global) until the
-- transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('threadbox:sandboxes', 0));

-- name: AdmissionThreadIsLive :one
SELECT EXISTS (
    SELECT 1 FROM threads
    WHERE user_id = @user_id AND thread_id = @thread_id AND state <> 'deleted'
)::boolean AS live;

-- name: AdmissionCountLiveThreads :one
SELECT count(*)::int AS threads FROM threads WHERE user_id = @user_id AND state <> 'deleted';

-- name: AdmissionSandboxRunning :one
-- Whether the entity's sandbox is recorded running (its ensure then only
-- refreshes a cache; it starts nothing).
SELECT EXISTS (
    SELECT 1 FROM sandboxes
    WHERE sandbox_type = @sandbox_type AND user_id = @user_id::text
      AND coalesce(thread_id, '') = @thread_id::text
      AND state = 'running' AND deleted_at IS NULL
)::boolean AS running;

-- name: AdmissionCountRunning :one
-- Running sandboxes other than the entity's own: in total, and the user's
-- agent sandboxes.
SELECT count(*)::int AS total,
       (count(*) FILTER (WHERE sandbox_type = 'agent' AND user_id = @user_id))::int AS user_agents
FROM running_sandboxes
WHERE NOT (sandbox_type = @sandbox_type AND user_id = @user_id AND thread_id = @thread_id::text);

-- name: AdmissionClaim :exec
INSERT INTO sandbox_claims (token, sandbox_type, user_id, thread_id, expires_at)
VALUES (@token, @sandbox_type, @user_id, @thread_id, now() + make_interval(secs => @ttl_seconds::float8));

-- name: AdmissionRelease :exec
DELETE FROM sandbox_claims WHERE token = @token;

-- name: AdmissionSweepClaims :exec
DELETE FROM sandbox_claims WHERE expires_at <= now();

-- name: AdmissionNextAutoStop :one
-- Seconds until the earliest auto-stop still ahead among running threads (of
-- one user, or of everyone when user_id is null); 0 when none is known. The
-- Retry-After of a sandbox limit.
SELECT coalesce(extract(epoch FROM min(auto_stop_at) - now()), 0)::float8 AS seconds
FROM threads
WHERE state = 'running' AND auto_stop_at > now()
  AND (sqlc.narg('user_id')::text IS NULL OR user_id = sqlc.narg('user_id'));

-- name: AdmissionUsage :one
-- Usage against the limits, for /metrics: running sandboxes in total, the
-- most any user runs and holds, and how many users are at each per-user
-- limit (a limit of 0, off, counts nobody).
WITH agents AS (
    SELECT user_id, count(*) AS n FROM running_sandboxes WHERE sandbox_type = 'agent' GROUP BY user_id
), live AS (
    SELECT user_id, count(*) AS n FROM threads WHERE state <> 'deleted' GROUP BY user_id
)
SELECT (SELECT count(*) FROM running_sandboxes)::int AS running_total,
       coalesce((SELECT max(n) FROM agents), 0)::int AS max_user_running,
       (SELECT count(*) FROM agents WHERE @sandbox_limit::int > 0 AND n >= @sandbox_limit::int)::int AS users_at_sandbox_limit,
       coalesce((SELECT max(n) FROM live), 0)::int AS max_user_threads,
       (SELECT count(*) FROM live WHERE @thread_limit::int > 0 AND n >= @thread_limit::int)::int AS users_at_thread_limit;
