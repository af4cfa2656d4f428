-- +goose Up
-- API keys can expire (expires_at, optional) and record when they were last
-- used. last_used_at is written at most once a minute per key (auth.Cache),
-- never on every request: it answers "is this key still in use?" before a
-- revoke, not an audit log.
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN last_used_at;
ALTER TABLE api_keys DROP COLUMN expires_at;
