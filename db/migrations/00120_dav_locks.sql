-- +goose Up
-- WebDAV locks, shared by every `serve` replica (they used to live in one
-- process's memory, which tied a user's WebDAV traffic to one replica).
-- root is the locked volume path ("/" or "/a/b", cleaned). A transient row is
-- the engine's per-request lock (a write without an If header); its
-- expires_at is a lease the request renews while it runs, so a replica that
-- dies mid-request leaves nothing that outlives the lease. held_until is set
-- while a request uses a lock it presented (the engine's Confirm): nobody
-- else may use, refresh or unlock it meanwhile, and it does not expire.
CREATE TABLE dav_locks (
    token       text PRIMARY KEY,
    user_id     text NOT NULL,
    root        text NOT NULL,
    zero_depth  boolean NOT NULL,
    shared      boolean NOT NULL,
    transient   boolean NOT NULL DEFAULT false,
    owner_xml   text NOT NULL DEFAULT '',
    timeout_s   bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    held_until  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dav_locks_user_root_idx ON dav_locks (user_id, root);
CREATE INDEX dav_locks_expires_idx ON dav_locks (expires_at);

-- +goose Down
DROP TABLE dav_locks;
