ALTER TABLE link_daily ALTER COLUMN dims TYPE jsonb USING dims::jsonb;
