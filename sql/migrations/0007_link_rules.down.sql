ALTER TABLE links
    DROP COLUMN stop_reason,
    DROP COLUMN password_hash,
    DROP COLUMN rules,
    DROP COLUMN forward_query,
    DROP COLUMN max_clicks,
    DROP COLUMN expires_at;
