-- tus spools in S3 and their locks (package uploadspool).

-- name: InsertUploadSpool :exec
INSERT INTO upload_spool (upload_id, spool_id) VALUES (@upload_id, @spool_id);

-- name: UploadSpoolID :one
SELECT spool_id FROM upload_spool WHERE upload_id = @upload_id;

-- name: TouchUploadSpool :exec
UPDATE upload_spool SET touched_at = now() WHERE upload_id = @upload_id;

-- name: DeleteUploadSpool :exec
DELETE FROM upload_spool WHERE upload_id = @upload_id;

-- name: StaleUploadSpools :many
-- Uploads that received no bytes since @before.
SELECT upload_id FROM upload_spool WHERE touched_at < @before ORDER BY touched_at;

-- name: TakeUploadLock :one
-- Takes the upload's lock for @holder unless another holder's lease is live;
-- true when taken. The lease is on the database's clock, shared by all.
WITH taken AS (
    INSERT INTO upload_locks (upload_id, holder, expires_at)
    VALUES (@upload_id, @holder, now() + make_interval(secs => @lease_seconds::float8))
    ON CONFLICT (upload_id) DO UPDATE
        SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
        WHERE upload_locks.expires_at < now()
    RETURNING 1
)
SELECT count(*) > 0 FROM taken;

-- name: RenewUploadLock :execrows
UPDATE upload_locks SET expires_at = now() + make_interval(secs => @lease_seconds::float8)
WHERE upload_id = @upload_id AND holder = @holder;

-- name: ReleaseUploadLock :exec
DELETE FROM upload_locks WHERE upload_id = @upload_id AND holder = @holder;
