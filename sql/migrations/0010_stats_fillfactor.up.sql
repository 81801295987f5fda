-- Room on each page of the stats tables for the next version of its rows
-- (issue 23, the merge case): every window after a day's first updates
-- that day's link_daily rows and that hour's clicks_hourly rows. On full
-- pages (fillfactor 100, as COPY fills them) each updated row moved to
-- another page and took a new primary-key entry too; with half of each
-- page free the update stays on its page (a HOT update: no index entry,
-- less WAL), and the next window's access prunes the old versions to
-- make room again. Measured: 320,000 rows of each updated in 1.8 s
-- against 3.3-6.9 s (bench/results/profiles-23/merge-fillfactor.log).
-- The price is disk: pages of finished days and hours keep their free
-- half, so new rows take about twice the pages. It applies to pages
-- written from now on; stored pages are not rewritten.
ALTER TABLE link_daily SET (fillfactor = 50);
ALTER TABLE clicks_hourly SET (fillfactor = 50);
