-- +goose Up
-- Space promised to writes in flight. Every write into a volume (REST, WebDAV,
-- tus, thread files under the volume mount) reserves its bytes here before the
-- first byte is sent, under a per-user advisory lock, and a new reservation
-- must fit the quota together with the stored usage and every live
-- reservation: N concurrent writers can no longer each claim the same free
-- space. A reservation ends when its write is counted (usage added and the
-- row deleted in one transaction) or fails; a writer that dies leaves a row
-- that expires (expires_at, renewed while the write runs).
--
-- spool, target, aside, phase and had_old record where a write's files are
-- while it runs (volume paths): the hidden spool being written, the file it
-- replaces, where that file is moved aside during the commit, and how far
-- the commit got ('aside': moving the old file aside; 'move-in': moving the
-- spool onto the target, had_old saying whether an old file is at aside).
-- They are written before each step, so the sweep can finish the work of a
-- writer that died: the old file goes back when the new one never arrived
-- whole, and is deleted when it did; the spool is deleted.
CREATE TABLE volume_reservations (
    id          text PRIMARY KEY,
    user_id     text NOT NULL,
    bytes       bigint NOT NULL CHECK (bytes >= 0),
    spool       text,
    target      text,
    aside       text,
    phase       text NOT NULL DEFAULT 'spool' CHECK (phase IN ('spool', 'aside', 'move-in')),
    had_old     boolean NOT NULL DEFAULT false,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX volume_reservations_user_idx ON volume_reservations (user_id, expires_at);
CREATE INDEX volume_reservations_expiry_idx ON volume_reservations (expires_at);

-- usage_version counts changes of used_bytes, so a measurement that ran while
-- a write was counted is not stored over it (compare-and-set).
ALTER TABLE volumes ADD COLUMN usage_version bigint NOT NULL DEFAULT 0;

-- Uploads still receiving held their reservation implicitly (a sum over
-- uploads); they now hold a row like every other write.
INSERT INTO volume_reservations (id, user_id, bytes, expires_at)
SELECT id, user_id, size, created_at + interval '24 hours' FROM uploads WHERE state = 'receiving';

-- +goose Down
ALTER TABLE volumes DROP COLUMN usage_version;
DROP TABLE volume_reservations;
