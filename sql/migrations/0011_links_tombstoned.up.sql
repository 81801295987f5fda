-- Deleted accounts' links (tombstones: user_id NULL) by when they became
-- tombstones. Each MapReduce run looks up the links tombstoned since the
-- earliest day it counts, so that clicks a proxy logged before the
-- account's deletion do not bring the deleted stats back
-- (mapreduce/internal/job/tombstones.go). Partial: live links, nearly all
-- of the table, are not in it.
CREATE INDEX links_tombstoned ON links (updated_at) WHERE user_id IS NULL;
