-- +goose Up
-- tus uploads spooled in an S3 bucket (uploadspool.S3), so any serve replica
-- can resume any upload. The bucket's key for an upload (tusd's s3store id,
-- which embeds the multipart upload id) is kept here under threadbox's own
-- upload id, with the last time bytes arrived (the janitor's idle clock).
CREATE TABLE upload_spool (
    upload_id   text PRIMARY KEY,
    spool_id    text NOT NULL,
    touched_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX upload_spool_touched_idx ON upload_spool (touched_at);

-- The lock of each upload being written or read (tusd's Locker), shared by
-- the replicas: a lease its holder renews, so a dead replica's lock ends by
-- itself.
CREATE TABLE upload_locks (
    upload_id   text PRIMARY KEY,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE upload_locks;
DROP TABLE upload_spool;
