-- A held link is left disabled: going down must not put a link taken
-- down for abuse back online.
DROP TRIGGER links_owner_held ON links;
DROP FUNCTION links_owner_held();
DROP TABLE credential_epoch;
DROP INDEX links_taken_down;
ALTER TABLE links
    DROP CONSTRAINT links_takedown_reason,
    DROP CONSTRAINT links_held,
    DROP COLUMN disabled_before,
    DROP COLUMN owner_suspended,
    DROP COLUMN taken_down_at,
    DROP COLUMN takedown_reason;
ALTER TABLE users DROP COLUMN suspended_at;
