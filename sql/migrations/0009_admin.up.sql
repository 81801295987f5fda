-- Admin actions (issue 21): suspended accounts and links taken down.
--
-- What a proxy reads stays links.disabled: a suspension or a takedown sets
-- it, so the change feed trigger (0002) tells every proxy at once and the
-- proxies' lookup is unchanged. A link under a hold (its owner suspended,
-- or taken down) keeps in disabled_before what disabled was before the
-- first hold; lifting the last hold puts it back, so unsuspending restores
-- exactly the links that were enabled. The constraint makes a held link
-- disabled whatever path writes it: an owner cannot re-enable one.
ALTER TABLE users ADD COLUMN suspended_at timestamptz;

ALTER TABLE links
    ADD COLUMN takedown_reason text,
    ADD COLUMN taken_down_at   timestamptz,
    ADD COLUMN owner_suspended boolean NOT NULL DEFAULT false,
    ADD COLUMN disabled_before boolean,
    ADD CONSTRAINT links_held CHECK (
        (disabled_before IS NOT NULL) = (takedown_reason IS NOT NULL OR owner_suspended)
        AND (disabled_before IS NULL OR disabled)),
    ADD CONSTRAINT links_takedown_reason CHECK (
        takedown_reason IS NULL OR char_length(takedown_reason) BETWEEN 1 AND 500);

-- The admin page lists links taken down, newest first.
CREATE INDEX links_taken_down ON links (taken_down_at DESC) WHERE takedown_reason IS NOT NULL;

-- Each app instance caches API keys' users (30 s); a suspension or its
-- lifting bumps this counter in its transaction, and every instance,
-- reading it each second, empties its cache when it moved: a suspended
-- account's keys stop on every instance, not only the one that suspended.
CREATE TABLE credential_epoch (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    epoch bigint NOT NULL
);
INSERT INTO credential_epoch (epoch) VALUES (0);

-- A link created while its owner is suspended (by a request let in a
-- moment before the suspension) is held like the others. Every
-- transaction that creates links holds the link creation lock
-- (sfsql.LinkCreateLock) from before it inserts until it commits, and
-- suspending or unsuspending changes users.suspended_at under that lock:
-- so the links a creation commits before the change are there for the
-- suspension's UPDATE of the account's links, and one after it reads the
-- change here. A statement trigger: one query per INSERT, which finds
-- nothing unless an owner is suspended.
CREATE FUNCTION links_owner_held() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE links l SET owner_suspended = true,
        disabled_before = coalesce(l.disabled_before, l.disabled), disabled = true
    FROM new_links n JOIN users u ON u.id = n.user_id
    WHERE l.id = n.id AND u.suspended_at IS NOT NULL AND NOT l.owner_suspended;
    RETURN NULL;
END $$;

CREATE TRIGGER links_owner_held AFTER INSERT ON links REFERENCING NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION links_owner_held();
