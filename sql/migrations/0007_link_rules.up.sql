-- Link features issue 21 adds on the redirect path: an expiry instant, a
-- click cap, query forwarding, redirect rules and a password. They live on
-- the links row so the change feed's trigger (0002) tells the proxies about
-- every edit of them, and the proxies' lookup reads them in one row.
ALTER TABLE links
    -- From this instant on the proxies answer 410 Gone.
    ADD COLUMN expires_at    timestamptz,
    -- The stats job disables a link whose counted clicks reach this.
    ADD COLUMN max_clicks    bigint CHECK (max_clicks > 0),
    -- Append the short URL's query string to the target's.
    ADD COLUMN forward_query boolean NOT NULL DEFAULT false,
    -- An ordered array of {kind, value, target}; first match wins. NULL
    -- when the link has none, so a plain link costs the proxy nothing.
    ADD COLUMN rules         jsonb CHECK (jsonb_typeof(rules) = 'array'),
    -- argon2id, PHC string format; NULL: no password.
    ADD COLUMN password_hash text,
    -- Why the system (not the owner) stopped the link, e.g. 'max_clicks';
    -- shown to the owner. Cleared when the owner re-enables it.
    ADD COLUMN stop_reason   text;
