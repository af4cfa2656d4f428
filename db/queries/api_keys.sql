-- name: CreateAPIKey :one
INSERT INTO api_keys (id, user_id, key_hash, key_prefix, is_admin, expires_at)
VALUES (@id, @user_id, @key_hash, @key_prefix, @is_admin, sqlc.narg('expires_at'))
RETURNING *;

-- name: GetActiveAPIKeyByHash :one
-- A key that verifies: not revoked and not expired.
SELECT * FROM api_keys
WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());

-- name: GetAPIKey :one
SELECT * FROM api_keys WHERE id = $1;

-- name: ListAPIKeys :many
-- Keys, oldest first: of one user when user_id is given, else all; revoked
-- and expired keys only when asked for.
SELECT * FROM api_keys
WHERE (sqlc.narg('user_id')::text IS NULL OR user_id = sqlc.narg('user_id'))
  AND (@include_inactive::boolean OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())))
ORDER BY created_at, id;

-- name: RevokeAPIKey :execrows
UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL;

-- name: TouchAPIKey :exec
-- Records a use, at most once a minute per key whatever the number of API
-- replicas: a later touch within the minute changes nothing.
UPDATE api_keys SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');
