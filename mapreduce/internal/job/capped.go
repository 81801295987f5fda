package job

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"shortfleet/mapreduce/internal/aggregate"
)

// stopCapped disables, in the run's own transaction, every link this run
// counted clicks for whose stored total (bots included, as the owner's
// click count) has reached its max_clicks, recording why. The change
// feed's trigger (migration 0002) tells the proxies, which stop
// redirecting it within their poll interval. Done with the commit that
// counted the clicks, a capped link is stopped at most one run late: the
// clicks answered after the segments this run read, until the proxies see
// the change, may pass the cap; none is lost or counted twice.
func stopCapped(ctx context.Context, tx pgx.Tx, parts []*aggregate.Partial) (int64, error) {
	seen := map[int64]bool{}
	var ids []int64
	for _, p := range parts {
		for k := range p.Days {
			if id := k.Link(); !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, `UPDATE links l SET disabled = true, stop_reason = 'max_clicks', updated_at = now()
		WHERE l.id = ANY($1) AND l.max_clicks IS NOT NULL AND NOT l.disabled
		  AND (SELECT coalesce(sum(h.clicks), 0) FROM clicks_hourly h WHERE h.link_id = l.id) >= l.max_clicks`, ids)
	if err != nil {
		return 0, fmt.Errorf("stop links at their click cap: %w", err)
	}
	return tag.RowsAffected(), nil
}
