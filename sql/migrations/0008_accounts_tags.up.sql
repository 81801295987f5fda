-- Account features (issue 21): tags on links, read-only API keys, and
-- deleted accounts' links kept as tombstones.

-- A link's tags. The shape is checked here as well as in the app, so no
-- path can store a tag the filters and the export cannot carry; a link
-- has at most store.MaxTags of them (checked by the app, which says so).
CREATE TABLE link_tags (
    link_id bigint NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    tag     text NOT NULL CONSTRAINT link_tags_shape CHECK (tag ~ '^[a-z0-9_-]{1,64}$'),
    PRIMARY KEY (link_id, tag)
);
CREATE INDEX link_tags_tag ON link_tags (tag, link_id);

-- A key's scope: 'read' lists, reads and exports; 'write' does everything.
-- Existing keys are 'write', as they were.
ALTER TABLE api_keys ADD COLUMN scope text NOT NULL DEFAULT 'write'
    CONSTRAINT api_keys_scope CHECK (scope IN ('read', 'write'));

-- A deleted account's links stay as tombstones, disabled and owned by
-- nobody: their ids (so codes) and aliases are never handed out again,
-- and the proxies, told by the change feed, answer 410 for them.
ALTER TABLE links ALTER COLUMN user_id DROP NOT NULL;
