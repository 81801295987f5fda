-- Stats dimensions (issue 4): the bot share of hourly clicks, one row per
-- link per day with unique visitors as a HyperLogLog sketch and the
-- dimension counts, the quarantine in the ingest ledger, and a record of
-- every mapreduce run.

ALTER TABLE clicks_hourly
    ADD COLUMN bot_clicks bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT clicks_hourly_bots CHECK (bot_clicks >= 0 AND bot_clicks <= clicks);

-- Everything about a link's day that is not hourly: merged by each run in
-- Go under the run lock. uniques is an axiomhq/hyperloglog sketch of salted
-- visitor hashes (no address is stored); dims maps a dimension to a value
-- to clicks: {"referrer": {"news.example": 12}, "country": {"CH": 3}, ...}.
CREATE TABLE link_daily (
    link_id    bigint NOT NULL,
    day        date NOT NULL,
    clicks     bigint NOT NULL CHECK (clicks >= 0),
    bot_clicks bigint NOT NULL CHECK (bot_clicks >= 0),
    uniques    bytea NOT NULL,
    dims       jsonb NOT NULL,
    PRIMARY KEY (link_id, day)
);

CREATE TABLE mapreduce_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL DEFAULT 'run' CHECK (kind IN ('run', 'recompute')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    segments     integer NOT NULL DEFAULT 0,
    records      bigint NOT NULL DEFAULT 0,
    clicks       bigint NOT NULL DEFAULT 0,
    quarantined  integer NOT NULL DEFAULT 0,
    proxies_down integer NOT NULL DEFAULT 0,
    error        text
);
CREATE INDEX mapreduce_runs_started ON mapreduce_runs (started_at DESC);

ALTER TABLE ingested_segments
    ADD COLUMN status text NOT NULL DEFAULT 'ingested' CHECK (status IN ('ingested', 'quarantined')),
    ADD COLUMN reason text,
    ADD COLUMN run_id bigint REFERENCES mapreduce_runs (id),
    ADD COLUMN min_time timestamptz,
    ADD COLUMN max_time timestamptz;
CREATE INDEX ingested_segments_time ON ingested_segments (min_time, max_time);
