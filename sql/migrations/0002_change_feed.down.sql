ALTER TABLE aliases DROP CONSTRAINT aliases_shape;
DROP TRIGGER aliases_feed ON aliases;
DROP FUNCTION alias_changed();
DROP TRIGGER links_feed ON links;
DROP FUNCTION link_changed();
DROP TABLE link_changes;
