-- Refuses (user_id contains null values) while tombstones of deleted
-- accounts exist: dropping them would let their aliases be taken again.
ALTER TABLE links ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE api_keys DROP COLUMN scope;
DROP TABLE link_tags;
