-- User files: volume usage accounting, WebDAV dead properties, tus uploads.

-- name: VolumeUsage :one
SELECT used_bytes, used_measured_at, usage_version FROM volumes WHERE user_id = $1;

-- name: SetVolumeUsage :execrows
UPDATE volumes SET used_bytes = @used_bytes, used_measured_at = now(), updated_at = now(),
    usage_version = usage_version + 1
WHERE user_id = @user_id;

-- name: SetMeasuredVolumeUsage :execrows
-- Stores a measurement unless a write may be in it without being counted,
-- or counted without being in it: usage changed while it ran
-- (compare-and-set on usage_version), or a write is committing now (its
-- file may already be in place, its count not yet added).
UPDATE volumes SET used_bytes = @used_bytes, used_measured_at = now(), updated_at = now(),
    usage_version = usage_version + 1
WHERE volumes.user_id = @user_id AND usage_version = @seen_version
  AND NOT EXISTS (SELECT 1 FROM volume_reservations r
                  WHERE r.user_id = @user_id AND r.phase <> 'spool' AND r.expires_at > now());

-- name: AddVolumeUsage :execrows
UPDATE volumes SET used_bytes = GREATEST(used_bytes + @delta, 0), updated_at = now(),
    usage_version = usage_version + 1
WHERE user_id = @user_id;

-- name: InvalidateVolumeUsage :exec
UPDATE volumes SET used_measured_at = NULL WHERE user_id = $1;

-- name: LockVolumeQuota :exec
-- Serialises quota decisions of one user for the rest of the transaction.
SELECT pg_advisory_xact_lock(hashtextextended('threadbox-volume-quota:' || @user_id::text, 0));

-- name: ReservedVolumeBytes :one
-- Bytes promised to the user's other writes in flight.
SELECT COALESCE(SUM(bytes), 0)::bigint AS bytes FROM volume_reservations
WHERE user_id = @user_id AND expires_at > now() AND id <> @except_id;

-- name: UpsertVolumeReservation :exec
INSERT INTO volume_reservations (id, user_id, bytes, spool, target, expires_at)
VALUES (@id, @user_id, @bytes, sqlc.narg('spool'), sqlc.narg('target'), now() + make_interval(secs => @ttl_seconds::float8))
ON CONFLICT (id) DO UPDATE SET bytes = EXCLUDED.bytes,
    expires_at = GREATEST(volume_reservations.expires_at, EXCLUDED.expires_at);

-- name: GetVolumeReservation :one
SELECT * FROM volume_reservations WHERE id = @id AND user_id = @user_id;

-- name: RenewVolumeReservation :execrows
-- Never shortens: a long-lived reservation (an upload) keeps its own expiry.
UPDATE volume_reservations
SET expires_at = GREATEST(expires_at, now() + make_interval(secs => @ttl_seconds::float8))
WHERE id = @id;

-- name: TrackVolumeReservation :exec
-- Records where a write's files are and the commit step it is about to
-- take, before it takes it.
UPDATE volume_reservations
SET spool = sqlc.narg('spool'), target = sqlc.narg('target'), aside = sqlc.narg('aside'),
    phase = @phase, had_old = @had_old
WHERE id = @id;

-- name: LeaveVolumeReservation :exec
-- A write that ended but could not clean up after itself: it holds no bytes
-- any more, and the sweep takes over at once.
UPDATE volume_reservations SET bytes = 0, expires_at = now() WHERE id = @id;

-- name: DeleteVolumeReservation :exec
DELETE FROM volume_reservations WHERE id = @id;

-- name: DeleteBareExpiredReservations :execrows
-- Expired reservations with nothing to clean up in the volume.
DELETE FROM volume_reservations
WHERE expires_at < @before AND spool IS NULL AND aside IS NULL;

-- name: ClaimExpiredReservations :many
-- Expired reservations whose files need settling, claimed for a while so
-- another replica's sweep skips them.
UPDATE volume_reservations SET expires_at = now() + make_interval(secs => @claim_seconds::float8)
WHERE id IN (
    SELECT r.id FROM volume_reservations r
    WHERE r.expires_at < @before AND (r.spool IS NOT NULL OR r.aside IS NOT NULL)
    ORDER BY r.expires_at
    LIMIT @max_rows
    FOR UPDATE SKIP LOCKED
)
RETURNING *;

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

-- name: AbandonedUploads :many
-- Uploads still receiving whose reservation is gone (expired and swept, or
-- released by a cancel): nobody can finish them any more.
SELECT u.id, u.user_id FROM uploads u
WHERE u.state = 'receiving' AND u.created_at < @before
  AND NOT EXISTS (SELECT 1 FROM volume_reservations r WHERE r.id = u.id AND r.expires_at > now());
