-- name: RecordLifecycleEvent :execrows
INSERT INTO lifecycle_events (dedup_key, entity_kind, user_id, entity_id, sandbox_id, event, cause, detail, occurred_at, stop_deadline)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (dedup_key) DO NOTHING;

-- name: PreviousRunBoundary :one
-- The entity's last row up to @at, other than @dedup_key's, that starts or
-- ends a running interval: whether a sandbox was running, and since when.
SELECT event, occurred_at FROM lifecycle_events
WHERE entity_kind = @entity_kind AND user_id = @user_id AND entity_id = @entity_id
  AND occurred_at <= @at AND dedup_key <> @dedup_key AND event = ANY(@boundaries::text[])
ORDER BY occurred_at DESC, id DESC
LIMIT 1;

-- name: UsageEvents :many
-- The rows that decide sandboxes' running time in a period: the boundaries
-- inside it, each entity's last boundary before it (its state at the start)
-- and first after it (how an interval open at the end ended), optionally for
-- one user.
SELECT * FROM (
    SELECT e.* FROM lifecycle_events e
    WHERE e.entity_kind IN ('thread', 'files') AND e.event = ANY(@boundaries::text[])
      AND e.occurred_at >= @period_start AND e.occurred_at < @period_end
      AND (@user_id::text = '' OR e.user_id = @user_id)
    UNION ALL
    SELECT b.* FROM (
        SELECT DISTINCT ON (entity_kind, user_id, entity_id) * FROM lifecycle_events
        WHERE entity_kind IN ('thread', 'files') AND event = ANY(@boundaries::text[])
          AND occurred_at < @period_start AND (@user_id::text = '' OR user_id = @user_id)
        ORDER BY entity_kind, user_id, entity_id, occurred_at DESC, id DESC
    ) b
    UNION ALL
    SELECT a.* FROM (
        SELECT DISTINCT ON (entity_kind, user_id, entity_id) * FROM lifecycle_events
        WHERE entity_kind IN ('thread', 'files') AND event = ANY(@boundaries::text[])
          AND occurred_at >= @period_end AND (@user_id::text = '' OR user_id = @user_id)
        ORDER BY entity_kind, user_id, entity_id, occurred_at, id
    ) a
) rows
ORDER BY entity_kind, user_id, entity_id, occurred_at, id;

-- name: ListLifecycleEvents :many
SELECT * FROM lifecycle_events
WHERE entity_kind = $1 AND user_id = $2 AND entity_id = $3
ORDER BY occurred_at, id;
