-- Users' volumes (one Daytona volume per user, or a subpath of a shared one).

-- name: UpsertVolume :exec
INSERT INTO volumes (user_id, volume_name, subpath, daytona_volume_id)
VALUES (@user_id, @volume_name, @subpath, @daytona_volume_id)
ON CONFLICT (user_id) DO UPDATE
    SET volume_name = EXCLUDED.volume_name, subpath = EXCLUDED.subpath,
        daytona_volume_id = EXCLUDED.daytona_volume_id, updated_at = now();

-- name: GetVolume :one
SELECT * FROM volumes WHERE user_id = $1;
