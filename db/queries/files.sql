-- User files: volume usage accounting, WebDAV dead properties, tus uploads.

-- name: VolumeUsage :one
SELECT used_bytes, used_measured_at FROM volumes WHERE user_id = $1;

-- name: SetVolumeUsage :execrows
UPDATE volumes SET used_bytes = @used_bytes, used_measured_at = now(), updated_at = now()
WHERE user_id = @user_id;

-- name: AddVolumeUsage :execrows
UPDATE volumes SET used_bytes = GREATEST(used_bytes + @delta, 0), updated_at = now()
WHERE user_id = @user_id;

-- name: InvalidateVolumeUsage :exec
UPDATE volumes SET used_measured_at = NULL WHERE user_id = $1;

-- name: DeadProps :many
SELECT path, namespace, local, xml FROM dead_props
WHERE user_id = @user_id AND path = ANY(@paths::text[])
ORDER BY path, namespace, local;

-- name: UpsertDeadProp :exec
INSERT INTO dead_props (user_id, path, namespace, local, xml)
VALUES (@user_id, @path, @namespace, @local, @xml)
ON CONFLICT (user_id, path, namespace, local) DO UPDATE SET xml = EXCLUDED.xml;

-- name: DeleteDeadProp :exec
DELETE FROM dead_props
WHERE user_id = @user_id AND path = @path AND namespace = @namespace AND local = @local;

-- name: DeleteDeadPropsTree :exec
-- The resource at @path and everything below it (prefix compared without
-- LIKE, so '%' and '_' in names are plain characters).
DELETE FROM dead_props
WHERE user_id = @user_id
  AND (path = @path OR left(path, length(@path::text) + 1) = @path::text || '/');

-- name: MoveDeadPropsTree :exec
UPDATE dead_props SET path = @to_path::text || substr(path, length(@from_path::text) + 1)
WHERE user_id = @user_id
  AND (path = @from_path OR left(path, length(@from_path::text) + 1) = @from_path::text || '/');

-- name: CreateUpload :exec
INSERT INTO uploads (id, user_id, path, size, state) VALUES (@id, @user_id, @path, @size, 'receiving');

-- name: GetUpload :one
SELECT * FROM uploads WHERE id = @id AND user_id = @user_id;

-- name: SetUploadState :exec
UPDATE uploads
SET state = @state, completed_at = CASE WHEN @state::text = 'receiving' THEN NULL ELSE now() END
WHERE id = @id;

-- name: ForgetUploadsBefore :execrows
-- Drops finished-upload records the janitor no longer needs to answer for.
DELETE FROM uploads WHERE state <> 'receiving' AND completed_at < @before;

-- name: ReceivingUploadBytes :one
-- Bytes promised to uploads still receiving: a new upload must fit the quota
-- together with them, so parallel uploads cannot each claim the same space
-- (and fill the spool disk). Abandoned uploads stop counting when the
-- janitor fails them.
SELECT COALESCE(SUM(size), 0)::bigint AS bytes FROM uploads WHERE user_id = @user_id AND state = 'receiving';
