-- Browser accounts (issue 5): admins, sessions, and what listing a user's
-- links needs.

ALTER TABLE users ADD COLUMN is_admin boolean NOT NULL DEFAULT false;

-- A session is a random token in a cookie; only its SHA-256 is stored, so a
-- database dump opens no session.
CREATE TABLE sessions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;

-- A user's links, newest first, and search by target.
CREATE INDEX links_user ON links (user_id, id DESC);
