-- link_daily.dims as json, not jsonb (issue 4's write speed): a run
-- writes hundreds of thousands of daily rows, and jsonb costs each of them
-- a parse into a tree and half as many bytes again on disk and in the WAL
-- (350 against 220 on average), for operators nothing uses: the dimension
-- counts are only ever read whole, by Go. json keeps the text as the job
-- wrote it, checked to be JSON.
ALTER TABLE link_daily ALTER COLUMN dims TYPE json USING dims::json;
