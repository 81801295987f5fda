package job

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/mapreduce/internal/aggregate"
)

// ErrIncomplete is returned by Recompute when the raw segments of the day
// are not all available: recomputing would lose clicks.
var ErrIncomplete = errors.New("raw segments of the day are not all available")

// Recompute rebuilds one day's stats (UTC) from the raw segments the
// proxies keep, for when a parser improves. It reads exactly the segments
// the ledger has as ingested that hold records of the day, keeps their
// clicks of that day, and replaces the day's hourly and daily rows in one
// transaction. It refuses, changing nothing, if a proxy is down or one of
// those segments is gone. It takes the run lock, and counts, as Run does:
// it returns ErrLocked, doing nothing, if another run holds the lock.
func (j *Job) Recompute(ctx context.Context, day time.Time) (res Result, err error) {
	day = day.UTC().Truncate(24 * time.Hour)
	from, to := day, day.Add(24*time.Hour)
	dayNum := int32(day.Unix() / 86400)
	r, err := j.startRun(ctx, "recompute")
	if err != nil {
		return res, err
	}
	res.RunID = r.id
	defer func() { r.end(&res, err) }()
	conn := r.conn

	listed := j.listAll(ctx, true, &res)
	if len(res.ProxiesDown) > 0 {
		return res, fmt.Errorf("%w: proxies down: %v", ErrIncomplete, res.ProxiesDown)
	}
	have := map[[2]string]*segment{}
	for _, s := range listed {
		have[[2]string{s.proxy, s.entry.Name}] = s
	}
	rows, err := conn.Query(ctx, `SELECT proxy, name FROM ingested_segments
		WHERE status = 'ingested' AND min_time < $2 AND max_time >= $1 ORDER BY proxy, name`, from, to)
	if err != nil {
		return res, fmt.Errorf("read ledger: %w", err)
	}
	var todo []*segment
	var missing []string
	for rows.Next() {
		var p, n string
		if err := rows.Scan(&p, &n); err != nil {
			return res, err
		}
		if s := have[[2]string{p, n}]; s != nil {
			todo = append(todo, s)
		} else {
			missing = append(missing, p+"/"+n)
		}
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	if len(missing) > 0 {
		return res, fmt.Errorf("%w: %d ingested segments are gone (retention?), first %s", ErrIncomplete, len(missing), missing[0])
	}
	w := <-j.workers
	defer func() { j.workers <- w }()
	totals := aggregate.NewTotals(j.cfg.Partitions)
	keep := func(cl aggregate.Click) bool { return cl.Day == dayNum }
	for _, s := range todo {
		w.c.Check()
		data, err := j.pull(ctx, s)
		if err != nil {
			return res, fmt.Errorf("%w: %v", ErrIncomplete, err)
		}
		records, err := w.scratch.MapSegment(data, w.c, keep)
		if err != nil {
			return res, fmt.Errorf("read %s/%s: %w", s.proxy, s.entry.Name, err)
		}
		s.records = records
		totals.Fold(&w.scratch)
	}
	reduced := totals.Partials()
	var clicks int64
	err = pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
		if _, err := dropTombstoned(ctx, tx, reduced); err != nil {
			return err
		}
		for _, p := range reduced {
			clicks += p.Clicks()
		}
		if _, err := tx.Exec(ctx, `DELETE FROM clicks_hourly WHERE hour >= $1 AND hour < $2`, from, to); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM link_daily WHERE day = $1`, day); err != nil {
			return err
		}
		w, err := writeAggregates(ctx, tx, reduced, j.dims, nil)
		if err != nil {
			return err
		}
		res.Aggregates = w.hours + w.days
		_, err = tx.Exec(ctx, `UPDATE mapreduce_runs SET finished_at = now(), segments = $2, clicks = $3 WHERE id = $1`,
			res.RunID, len(todo), clicks)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("commit recompute: %w", err)
	}
	res.Segments, res.Clicks = len(todo), clicks
	return res, nil
}
