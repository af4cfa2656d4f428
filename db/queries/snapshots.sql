-- Snapshot versions and the active pointer. Only the snapshot build workflow
-- inserts versions (one build at a time); the build's promotion and the
-- activation/rollback workflows move the pointer, always under
-- LockSnapshotPointer and always with an audit row in snapshot_activations.

-- name: LockSnapshotPointer :exec
-- Serialises every change of the active pointer for the rest of the transaction.
SELECT pg_advisory_xact_lock(hashtext('threadbox:snapshot-pointer'));

-- name: GetActiveSnapshot :one
SELECT * FROM snapshots WHERE active;

-- name: NextSnapshotVersion :one
SELECT (coalesce(max(version), 0) + 1)::int AS version FROM snapshots;

-- name: InsertSnapshot :one
-- No row when the version exists already (a retried activity): read it with
-- GetSnapshotByVersion.
INSERT INTO snapshots (version, daytona_name, state, skill_ids, created_by, workflow_id, built_from_id)
VALUES (@version, @daytona_name, 'building', @skill_ids, @created_by, @workflow_id, @built_from_id)
ON CONFLICT (version) DO NOTHING
RETURNING *;

-- name: GetSnapshotByVersion :one
SELECT * FROM snapshots WHERE version = @version;

-- name: GetSnapshot :one
SELECT * FROM snapshots WHERE id = @id;

-- name: ListSnapshots :many
SELECT * FROM snapshots ORDER BY version DESC;

-- name: MarkSnapshotReady :exec
UPDATE snapshots
SET state = 'ready', daytona_snapshot_id = @daytona_snapshot_id, ready_at = coalesce(ready_at, now()), error_message = NULL
WHERE id = @id;

-- name: MarkSnapshotFailed :exec
UPDATE snapshots SET state = 'failed', error_message = @error_message
WHERE id = @id AND state = 'building';

-- name: ClearActiveSnapshot :exec
UPDATE snapshots SET active = false WHERE active;

-- name: SetSnapshotActive :exec
UPDATE snapshots SET active = true, activated_at = now() WHERE id = @id AND state = 'ready';

-- name: InsertSnapshotActivation :one
-- No row when this workflow already wrote its audit row (a retried activity).
INSERT INTO snapshot_activations (from_snapshot_id, to_snapshot_id, actor, reason, workflow_id, outcome)
VALUES (@from_snapshot_id, @to_snapshot_id, @actor, @reason, @workflow_id, @outcome)
ON CONFLICT (workflow_id) DO NOTHING
RETURNING *;

-- name: GetActivationByWorkflow :one
SELECT * FROM snapshot_activations WHERE workflow_id = @workflow_id;

-- name: LastActivation :one
-- The latest change of the pointer that took effect: its from is "the
-- previously active version" a rollback without a target returns to.
SELECT * FROM snapshot_activations WHERE outcome = 'activated' ORDER BY id DESC LIMIT 1;

-- name: ListSnapshotActivations :many
SELECT * FROM snapshot_activations ORDER BY id DESC LIMIT @max_rows;
