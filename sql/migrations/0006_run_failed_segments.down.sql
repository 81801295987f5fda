ALTER TABLE mapreduce_runs
    DROP COLUMN unknown_version,
    DROP COLUMN failed;
