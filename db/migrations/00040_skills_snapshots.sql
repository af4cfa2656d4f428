-- +goose Up
-- Snapshot builds remember which workflow made them and which version was
-- active when they started (NULL = the base snapshot), so the promotion can
-- refuse to overwrite an activation that happened during the build.
ALTER TABLE snapshots ADD COLUMN workflow_id text NOT NULL DEFAULT '';
ALTER TABLE snapshots ADD COLUMN built_from_id bigint REFERENCES snapshots (id);

-- An audit row is also written when a build finished but was deliberately not
-- promoted ('skipped'), so an admin sees why the newest version is not active.
ALTER TABLE snapshot_activations
    ADD COLUMN outcome text NOT NULL DEFAULT 'activated' CHECK (outcome IN ('activated', 'skipped'));

CREATE INDEX skills_name_idx ON skills (name, version);

-- +goose Down
DROP INDEX skills_name_idx;
ALTER TABLE snapshot_activations DROP COLUMN outcome;
ALTER TABLE snapshots DROP COLUMN built_from_id;
ALTER TABLE snapshots DROP COLUMN workflow_id;
