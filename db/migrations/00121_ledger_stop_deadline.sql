-- +goose Up
-- The policy deadline a stop carried out (last use + auto-stop, or the last
-- lease's expiry), written with each "stopped" row, so the ledger alone tells
-- how long a sandbox ran past it (the usage report's late seconds and the
-- stop-delay metric). NULL on every other row, and on rows written before.
ALTER TABLE lifecycle_events ADD COLUMN stop_deadline timestamptz;
-- The usage report reads a period across every entity.
CREATE INDEX lifecycle_events_time_idx ON lifecycle_events (occurred_at);

-- +goose Down
DROP INDEX lifecycle_events_time_idx;
ALTER TABLE lifecycle_events DROP COLUMN stop_deadline;
