package job

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/mapreduce/internal/aggregate"
	sfsql "shortfleet/sql"
)

// tombstoneSlack is how much earlier than a run's earliest day a link's
// tombstoning is looked for: room for a proxy's clock ahead of the
// primary's.
const tombstoneSlack = time.Hour

// dropTombstoned takes the stats write lock in tx and drops from parts
// every day of a link that became a tombstone (its account deleted) since
// the earliest day the run counts, and returns how many links it dropped.
//
// A proxy logs clicks until it hears of the deletion, and the next run
// would count them: without this, a deleted account's stats, which
// DeleteAccount removed, would come back from those clicks. A link's
// clicks all come before its tombstoning, so one tombstoned before the
// run's earliest day has none here and need not be looked up: the lookup
// (links_tombstoned, a partial index) reads only the recent tombstones.
// The lock orders the run's write and a deletion: a deletion waits for a
// run that has looked, and a run that looks after a deletion sees it.
func dropTombstoned(ctx context.Context, tx pgx.Tx, parts []*aggregate.Partial) (int, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sfsql.StatsWriteLock); err != nil {
		return 0, fmt.Errorf("take stats write lock: %w", err)
	}
	first, found := int32(0), false
	for _, p := range parts {
		for k := range p.Days {
			if d := k.Day(); !found || d < first {
				first, found = d, true
			}
		}
	}
	if !found {
		return 0, nil
	}
	since := time.Unix(int64(first)*86400, 0).Add(-tombstoneSlack)
	rows, err := tx.Query(ctx, `SELECT id FROM links WHERE user_id IS NULL AND updated_at >= $1`, since)
	if err != nil {
		return 0, fmt.Errorf("look up deleted accounts' links: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("look up deleted accounts' links: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	gone := make(map[int64]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	dropped := map[int64]bool{}
	for _, p := range parts {
		for k := range p.Days {
			if gone[k.Link()] {
				delete(p.Days, k)
				dropped[k.Link()] = true
			}
		}
	}
	return len(dropped), nil
}
