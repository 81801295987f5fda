DROP INDEX ingested_segments_time;
ALTER TABLE ingested_segments DROP COLUMN max_time, DROP COLUMN min_time, DROP COLUMN run_id,
    DROP COLUMN reason, DROP COLUMN status;
DROP TABLE mapreduce_runs;
DROP TABLE link_daily;
ALTER TABLE clicks_hourly DROP CONSTRAINT clicks_hourly_bots, DROP COLUMN bot_clicks;
