-- The change feed (DESIGN.md decision 4): every change to a link or an alias
-- after its creation gets a row here, written by triggers so that no path
-- can forget it. Proxies poll it on their replica (hot standbys cannot
-- LISTEN) and evict what changed from their caches.
CREATE TABLE link_changes (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    link_id    bigint NOT NULL,
    alias      text,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX link_changes_changed_at ON link_changes (changed_at);

CREATE FUNCTION link_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO link_changes (link_id) VALUES (NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER links_feed AFTER UPDATE ON links
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION link_changed();

CREATE FUNCTION alias_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO link_changes (link_id, alias) VALUES (OLD.link_id, OLD.alias);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO link_changes (link_id, alias) VALUES (NEW.link_id, NEW.alias);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER aliases_feed AFTER INSERT OR UPDATE OR DELETE ON aliases
    FOR EACH ROW EXECUTE FUNCTION alias_changed();

-- Aliases never look like codes: a proxy tells them apart without a lookup.
ALTER TABLE aliases ADD CONSTRAINT aliases_shape
    CHECK (alias ~ '^[A-Za-z0-9_-]{3,64}$' AND alias !~ '^[0-9A-Za-z]{7}$');
