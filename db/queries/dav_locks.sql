-- WebDAV locks (davlock.Store). Every statement is scoped to one user; a lock
-- is live while expires_at or held_until is ahead of the caller's clock.

-- name: LockDavUser :exec
-- Serialises one user's lock changes across replicas until the transaction
-- ends (conflict checks and inserts must not interleave).
SELECT pg_advisory_xact_lock(hashtextextended('dav-locks:' || @user_id::text, 0));

-- name: DavLocksNear :many
-- The user's live locks on @path, on its ancestors and below it: every lock
-- that could cover the path or that a depth-infinity lock on it would cover.
SELECT * FROM dav_locks
WHERE user_id = @user_id
  AND (expires_at > @now OR held_until > @now)
  AND (root = @path::text OR root = '/' OR @path::text = '/'
       OR starts_with(@path::text, root || '/') OR starts_with(root, @path::text || '/'))
ORDER BY root, token;

-- name: CountDavLocks :one
-- The user's live locks taken with LOCK (transient ones do not count).
SELECT count(*)::bigint FROM dav_locks
WHERE user_id = @user_id AND NOT transient AND (expires_at > @now OR held_until > @now);

-- name: InsertDavLock :exec
INSERT INTO dav_locks (token, user_id, root, zero_depth, shared, transient, owner_xml, timeout_s, expires_at, held_until)
VALUES (@token, @user_id, @root, @zero_depth, @shared, @transient, @owner_xml, @timeout_s, @expires_at, @held_until);

-- name: GetDavLock :one
SELECT * FROM dav_locks
WHERE user_id = @user_id AND token = @token AND NOT transient AND (expires_at > @now OR held_until > @now);

-- name: RefreshDavLock :exec
UPDATE dav_locks SET timeout_s = @timeout_s, expires_at = @expires_at
WHERE user_id = @user_id AND token = @token;

-- name: DeleteDavLock :exec
DELETE FROM dav_locks WHERE user_id = @user_id AND token = @token;

-- name: HoldDavLocks :many
-- Holds the given locks for a request; the caller compares the tokens
-- returned with those asked for (one held elsewhere is not returned).
UPDATE dav_locks SET held_until = @until::timestamptz
WHERE user_id = @user_id AND token = ANY(@tokens::text[])
  AND (expires_at > @now OR held_until > @now)
  AND (held_until IS NULL OR held_until <= @now)
RETURNING token;

-- name: RenewDavGrant :exec
-- Extends a running request's leases: its holds and its transient locks.
UPDATE dav_locks
SET held_until = CASE WHEN transient THEN held_until ELSE @until::timestamptz END,
    expires_at = CASE WHEN transient THEN @until::timestamptz ELSE expires_at END
WHERE user_id = @user_id AND token = ANY(@tokens::text[]);

-- name: ReleaseDavHolds :exec
-- Ends a request's use of the locks it presented.
UPDATE dav_locks SET held_until = NULL
WHERE user_id = @user_id AND token = ANY(@tokens::text[]) AND NOT transient;

-- name: DeleteTransientDavLocks :exec
-- Drops a request's transient locks when it ends.
DELETE FROM dav_locks WHERE user_id = @user_id AND token = ANY(@tokens::text[]) AND transient;

-- name: DeleteStaleDavLocks :execrows
-- Locks of every user that ended before @before (expired and not held).
DELETE FROM dav_locks
WHERE expires_at < @before AND (held_until IS NULL OR held_until < @before);
