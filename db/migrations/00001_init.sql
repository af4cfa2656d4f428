-- +goose Up
-- API keys are stored as SHA-256 digests; the clear key is shown once by
-- `threadbox apikey create` and never stored.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    user_id     text NOT NULL CHECK (user_id <> ''),
    key_hash    bytea NOT NULL UNIQUE,
    key_prefix  text NOT NULL,
    is_admin    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- One Daytona volume (or one subpath of a shared volume) per user. used_bytes
-- is threadbox's own accounting for DAYTONA_VOLUME_SIZE_GB (Daytona volumes
-- have no size).
CREATE TABLE volumes (
    user_id            text PRIMARY KEY,
    volume_name        text NOT NULL,
    subpath            text NOT NULL DEFAULT '',
    daytona_volume_id  text,
    used_bytes         bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- A thread is scoped to its user. The row outlives the sandbox: state
-- 'deleted' keeps history, and a new create with the same id revives it.
CREATE TABLE threads (
    user_id           text NOT NULL,
    thread_id         text NOT NULL,
    state             text NOT NULL CHECK (state IN ('creating', 'running', 'stopped', 'deleted', 'error')),
    sandbox_id        text,
    generation        integer NOT NULL DEFAULT 0,
    snapshot          text,
    last_activity_at  timestamptz,
    auto_stop_at      timestamptz,
    auto_delete_at    timestamptz,
    error_message     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, thread_id)
);

-- Every sandbox threadbox created, so the reconciler can tell its own from
-- orphans and operators can audit cost.
CREATE TABLE sandboxes (
    sandbox_id    text PRIMARY KEY,
    name          text NOT NULL,
    sandbox_type  text NOT NULL CHECK (sandbox_type IN ('agent', 'files', 'scratch')),
    user_id       text,
    thread_id     text,
    generation    integer NOT NULL DEFAULT 0,
    snapshot      text,
    state         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE INDEX sandboxes_owner_idx ON sandboxes (user_id, thread_id);

-- Snapshot versions. Exactly one row is active (partial unique index); the
-- Daytona snapshot name is unique and versioned because Daytona snapshots are
-- immutable and have no alias.
CREATE TABLE snapshots (
    id                   bigserial PRIMARY KEY,
    version              integer NOT NULL UNIQUE,
    daytona_name         text NOT NULL UNIQUE,
    daytona_snapshot_id  text,
    state                text NOT NULL CHECK (state IN ('building', 'ready', 'failed')),
    active               boolean NOT NULL DEFAULT false,
    skill_ids            uuid[] NOT NULL DEFAULT '{}',
    error_message        text,
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    ready_at             timestamptz,
    activated_at         timestamptz
);
CREATE UNIQUE INDEX snapshots_one_active_idx ON snapshots ((true)) WHERE active;

-- Audit trail of every change of the active snapshot.
CREATE TABLE snapshot_activations (
    id                bigserial PRIMARY KEY,
    from_snapshot_id  bigint REFERENCES snapshots (id),
    to_snapshot_id    bigint REFERENCES snapshots (id),
    actor             text NOT NULL,
    reason            text NOT NULL,
    workflow_id       text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_id)
);

-- Skill versions; each upload is a new version of its skill name.
CREATE TABLE skills (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    version         integer NOT NULL,
    description     text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('validating', 'valid', 'invalid', 'published')),
    archive         bytea NOT NULL,
    archive_format  text NOT NULL CHECK (archive_format IN ('zip', 'tar.gz')),
    manifest        jsonb NOT NULL DEFAULT '{}',
    validation_log  text NOT NULL DEFAULT '',
    snapshot_id     bigint REFERENCES snapshots (id),
    workflow_id     text NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

-- tus uploads in flight or finished (finished rows answer a client that lost
-- the final response).
CREATE TABLE uploads (
    id            text PRIMARY KEY,
    user_id       text NOT NULL,
    path          text NOT NULL,
    size          bigint NOT NULL,
    state         text NOT NULL CHECK (state IN ('receiving', 'stored', 'failed')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz
);
CREATE INDEX uploads_user_idx ON uploads (user_id);

-- WebDAV dead properties, keyed by the resource path in the user's volume.
CREATE TABLE dead_props (
    user_id    text NOT NULL,
    path       text NOT NULL,
    namespace  text NOT NULL,
    local      text NOT NULL,
    xml        text NOT NULL,
    PRIMARY KEY (user_id, path, namespace, local)
);

-- Ledger of lifecycle transitions. dedup_key makes writes from retried
-- activities idempotent.
CREATE TABLE lifecycle_events (
    id           bigserial PRIMARY KEY,
    dedup_key    text NOT NULL UNIQUE,
    entity_kind  text NOT NULL CHECK (entity_kind IN ('thread', 'files', 'skill', 'snapshot')),
    user_id      text NOT NULL DEFAULT '',
    entity_id    text NOT NULL,
    sandbox_id   text NOT NULL DEFAULT '',
    event        text NOT NULL,
    cause        text NOT NULL,
    detail       text NOT NULL DEFAULT '',
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX lifecycle_events_entity_idx ON lifecycle_events (entity_kind, user_id, entity_id, occurred_at);

-- +goose Down
DROP TABLE lifecycle_events;
DROP TABLE dead_props;
DROP TABLE uploads;
DROP TABLE skills;
DROP TABLE snapshot_activations;
DROP TABLE snapshots;
DROP TABLE sandboxes;
DROP TABLE threads;
DROP TABLE volumes;
DROP TABLE api_keys;
