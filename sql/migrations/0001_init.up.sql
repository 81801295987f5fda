-- Accounts, links, stats and the ingest ledger: the walking skeleton's schema.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_lower CHECK (email = lower(email))
);
CREATE UNIQUE INDEX users_email ON users (email);

-- API keys are stored as the SHA-256 of the key: a key is 32 random bytes, so
-- a fast hash is enough, and a database dump reveals no usable key.
CREATE TABLE api_keys (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL DEFAULT '',
    prefix     text NOT NULL,
    key_hash   bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE UNIQUE INDEX api_keys_key_hash ON api_keys (key_hash);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

-- A link's code is a keyed permutation of its id (DESIGN.md decision 1); the
-- sequence stops where the 41-bit code space ends.
CREATE SEQUENCE link_id_seq AS bigint MINVALUE 1 MAXVALUE 2199023255551;

CREATE TABLE links (
    id            bigint PRIMARY KEY DEFAULT nextval('link_id_seq'),
    user_id       bigint NOT NULL REFERENCES users (id),
    target        text NOT NULL,
    redirect_type smallint NOT NULL DEFAULT 302
                  CHECK (redirect_type IN (301, 302, 307, 308)),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE link_id_seq OWNED BY links.id;

-- Custom codes, looked up by text beside the permuted codes.
CREATE TABLE aliases (
    alias      text PRIMARY KEY,
    link_id    bigint NOT NULL REFERENCES links (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX aliases_link_id ON aliases (link_id);

-- Clicks per link per hour, added to by each mapreduce run. No foreign key:
-- the ingest writes millions of rows and every link id it writes came from a
-- code that decoded and was found.
CREATE TABLE clicks_hourly (
    link_id bigint NOT NULL,
    hour    timestamptz NOT NULL,
    clicks  bigint NOT NULL CHECK (clicks >= 0),
    PRIMARY KEY (link_id, hour)
);

-- Every segment a mapreduce run consumed, written in the same transaction as
-- the aggregates it produced (DESIGN.md decision 6).
CREATE TABLE ingested_segments (
    proxy       text NOT NULL,
    name        text NOT NULL,
    sha256      bytea NOT NULL,
    rows        bigint NOT NULL,
    bytes       bigint NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (proxy, name)
);
