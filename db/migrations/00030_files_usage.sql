-- +goose Up
-- When used_bytes was last measured in the volume itself (du in the files
-- sandbox). NULL means "unknown": a recursive delete or a first use, so the
-- next quota decision measures before it decides. Writes made by agents in
-- their threads never pass through threadbox; they are picked up by these
-- lazy re-measurements.
ALTER TABLE volumes ADD COLUMN used_measured_at timestamptz;
CREATE INDEX uploads_state_idx ON uploads (state, created_at);

-- +goose Down
DROP INDEX uploads_state_idx;
ALTER TABLE volumes DROP COLUMN used_measured_at;
