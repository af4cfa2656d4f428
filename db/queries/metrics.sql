-- Aggregates read at scrape time by the worker's /metrics (metrics.StateCollector).

-- name: CountLiveSandboxes :many
-- Sandboxes threadbox holds that are not deleted, by kind and state.
SELECT sandbox_type, state, count(*)::bigint AS sandboxes
FROM sandboxes
WHERE deleted_at IS NULL
GROUP BY sandbox_type, state;

-- name: VolumeTotals :one
-- Users' volumes, the bytes they hold, and how many use at least near_bytes.
SELECT count(*)::bigint AS volumes,
       coalesce(sum(used_bytes), 0)::bigint AS used_bytes,
       count(*) FILTER (WHERE used_bytes >= @near_bytes::bigint)::bigint AS near_quota
FROM volumes;
