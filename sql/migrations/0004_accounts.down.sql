DROP INDEX links_user;
ALTER TABLE api_keys DROP COLUMN last_used_at;
DROP TABLE sessions;
ALTER TABLE users DROP COLUMN is_admin;
