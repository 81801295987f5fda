DROP INDEX links_tombstoned;
