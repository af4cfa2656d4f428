-- Admission (package admission): the limits on threads and running sandboxes,
-- counted in PostgreSQL so that they hold across API replicas. Each decision
-- runs in a transaction that first takes an advisory lock, so two replicas
-- never both admit the last free place.

-- name: AdmissionLockUserThreads :exec
-- Serialises thread creation per user until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('threadbox:threads:' || @user_id::text, 0));

-- name: AdmissionLockSandboxes :exec
-- Serialises sandbox admission (the total limit is global) until the
-- transaction ends. Claims are ephemeral (they expire, and a lost one only
-- admits one sandbox too many after a database crash), so the transaction
-- does not wait for its commit to reach the disk.
SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(hashtextextended('threadbox:sandboxes', 0));

-- name: AdmissionCountThreads :one
-- The user's live threads, and whether thread_id is one of them.
SELECT count(*)::int AS live,
       coalesce(bool_or(thread_id = @thread_id), false)::boolean AS exists
FROM threads
WHERE user_id = @user_id AND state <> 'deleted';

-- name: AdmissionSandboxRunning :one
-- Whether the entity's sandbox is recorded running (its ensure then only
-- refreshes a cache; it starts nothing).
SELECT EXISTS (
    SELECT 1 FROM sandboxes
    WHERE sandbox_type = @sandbox_type AND user_id = @user_id::text
      AND coalesce(thread_id, '') = @thread_id::text
      AND state = 'running' AND deleted_at IS NULL
)::boolean AS running;

-- name: AdmissionClaim :one
-- Counts the running sandboxes other than the entity's own (in total, and
-- the user's agent sandboxes) and, when both are under their limits (0:
-- none), claims a place for the entity until the claim's expiry. Run after
-- AdmissionLockSandboxes, so the count sees every claim committed before.
WITH n AS (
    SELECT count(*)::int AS total,
           (count(*) FILTER (WHERE sandbox_type = 'agent' AND user_id = @user_id::text))::int AS user_agents
    FROM running_sandboxes
    WHERE NOT (sandbox_type = @sandbox_type::text AND user_id = @user_id::text AND thread_id = @thread_id::text)
), claim AS (
    INSERT INTO sandbox_claims (token, sandbox_type, user_id, thread_id, expires_at)
    SELECT @token, @sandbox_type::text, @user_id::text, @thread_id::text, now() + make_interval(secs => @ttl_seconds::float8)
    FROM n
    WHERE (@max_user_agents::int = 0 OR n.user_agents < @max_user_agents::int)
      AND (@max_total::int = 0 OR n.total < @max_total::int)
    RETURNING token
)
SELECT n.total, n.user_agents, EXISTS (SELECT 1 FROM claim)::boolean AS claimed FROM n;

-- name: AdmissionRelease :exec
-- Ends a claim, and sweeps the claims of replicas that died. One statement
-- in its own transaction (one round trip, on the way back of every cold
-- ensure), whose commit need not wait for the disk (see above): the CTE's
-- set_config is local to that transaction and read when it commits.
WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v)
DELETE FROM sandbox_claims
WHERE (token = @token OR expires_at <= now()) AND EXISTS (SELECT 1 FROM async);

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
