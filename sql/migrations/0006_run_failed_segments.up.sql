-- Segments a run left pending, to retry next run (issue 17): those it could
-- not pull, and of them those of a format version the job does not read,
-- which wait for mapreduce to be upgraded. The fleet page shows both.
ALTER TABLE mapreduce_runs
    ADD COLUMN failed integer NOT NULL DEFAULT 0,
    ADD COLUMN unknown_version integer NOT NULL DEFAULT 0;
