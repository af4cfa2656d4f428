-- +goose Up
-- Admission (package admission) counts running sandboxes from PostgreSQL so
-- its limits hold across API replicas. A claim is a sandbox being started by
-- an ensure-running in flight: it counts as running from the moment it is
-- admitted until the ensure is over (when the sandboxes row says 'running',
-- or it failed), and expires on its own if the replica that made it died.
CREATE TABLE sandbox_claims (
    token         uuid PRIMARY KEY,
    sandbox_type  text NOT NULL CHECK (sandbox_type IN ('agent', 'files')),
    user_id       text NOT NULL,
    thread_id     text NOT NULL DEFAULT '',
    expires_at    timestamptz NOT NULL
);
CREATE INDEX sandbox_claims_expiry_idx ON sandbox_claims (expires_at);

-- Running entity sandboxes, one row per entity (a thread's agent sandbox,
-- a user's files sandbox): the sandboxes the workflows recorded running,
-- and those being started. Skill scratch sandboxes are not counted.
CREATE VIEW running_sandboxes AS
SELECT sandbox_type, coalesce(user_id, '') AS user_id, coalesce(thread_id, '') AS thread_id
FROM sandboxes
WHERE state = 'running' AND deleted_at IS NULL AND sandbox_type IN ('agent', 'files')
UNION
SELECT sandbox_type, user_id, thread_id
FROM sandbox_claims
WHERE expires_at > now();

-- The sandboxes table keeps every sandbox ever made; admission reads the few
-- that run.
CREATE INDEX sandboxes_running_idx ON sandboxes (sandbox_type, user_id, thread_id)
    WHERE state = 'running' AND deleted_at IS NULL;

-- +goose Down
DROP INDEX sandboxes_running_idx;
DROP VIEW running_sandboxes;
DROP TABLE sandbox_claims;
