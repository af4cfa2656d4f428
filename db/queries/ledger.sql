-- name: RecordLifecycleEvent :execrows
INSERT INTO lifecycle_events (dedup_key, entity_kind, user_id, entity_id, sandbox_id, event, cause, detail, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (dedup_key) DO NOTHING;

-- name: ListLifecycleEvents :many
SELECT * FROM lifecycle_events
WHERE entity_kind = $1 AND user_id = $2 AND entity_id = $3
ORDER BY occurred_at, id;
