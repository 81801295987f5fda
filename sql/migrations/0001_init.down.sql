DROP TABLE ingested_segments;
DROP TABLE clicks_hourly;
DROP TABLE aliases;
DROP TABLE links;
DROP SEQUENCE IF EXISTS link_id_seq;
DROP TABLE api_keys;
DROP TABLE users;
