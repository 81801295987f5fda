package job

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/mapreduce/internal/dims"
	sfsql "shortfleet/sql"
)

// dimIndex maps a dimension's name to its index.
var dimIndex = func() map[string]uint8 {
	m := map[string]uint8{}
	for i, n := range sfsql.DimNames {
		m[n] = uint8(i)
	}
	return m
}()

// dayDate is the date of a day number.
func dayDate(d int32) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// commit writes a run's aggregates, its ledger rows and the run's figures
// in one transaction: the hourly counts through COPY into a staging table
// and one additive upsert, the daily rows merged with what is stored. A
// ledger row that exists already aborts everything, so a segment is never
// counted twice even if the lock were bypassed.
func (j *Job) commit(ctx context.Context, conn *pgx.Conn, done []*segment, reduced []*Partial, res *Result) error {
	var ledger [][]any
	var records int64
	ingested, quarantined := 0, 0
	for _, s := range done {
		sum, _ := hex.DecodeString(s.entry.SHA256)
		status := "ingested"
		var reason *string
		if s.reason != "" {
			status, reason = "quarantined", &s.reason
			quarantined++
		} else {
			ingested++
			records += s.records
		}
		ledger = append(ledger, []any{s.proxy, s.entry.Name, sum, s.entry.Rows, s.entry.Bytes, status, reason, res.RunID,
			time.Unix(0, s.entry.MinTime).UTC(), time.Unix(0, s.entry.MaxTime).UTC()})
	}
	var clicks int64
	for _, p := range reduced {
		clicks += p.Clicks()
	}
	var aggregates int
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		t := time.Now()
		n, err := writeHours(ctx, tx, reduced, true)
		if err != nil {
			return err
		}
		hoursTook := time.Since(t)
		t = time.Now()
		m, err := writeDays(ctx, tx, reduced, j.dims, true)
		if err != nil {
			return err
		}
		daysTook := time.Since(t)
		aggregates = n + m
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ingested_segments"},
			[]string{"proxy", "name", "sha256", "rows", "bytes", "status", "reason", "run_id", "min_time", "max_time"},
			pgx.CopyFromRows(ledger)); err != nil {
			return fmt.Errorf("record ingested segments: %w", err)
		}
		if _, err = tx.Exec(ctx, `UPDATE mapreduce_runs SET finished_at = now(), segments = $2, records = $3,
			clicks = $4, quarantined = $5, proxies_down = $6 WHERE id = $1`,
			res.RunID, ingested, records, clicks, quarantined, len(res.ProxiesDown)); err != nil {
			return err
		}
		// Everything is written, nothing committed: a crash here must leave
		// no trace.
		j.stage(ctx, "written", "hours", n, "hours_took", hoursTook.Round(time.Millisecond),
			"days", m, "days_took", daysTook.Round(time.Millisecond), "ledger_rows", len(ledger))
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit run: %w", err)
	}
	res.Segments, res.Records, res.Clicks, res.Aggregates, res.Quarantined = ingested, records, clicks, aggregates, quarantined
	return nil
}

// writeHours stores the hourly counts: added to what is stored, or, for a
// recompute, replacing it.
func writeHours(ctx context.Context, tx pgx.Tx, parts []*Partial, add bool) (int, error) {
	var rows [][]any
	for _, p := range parts {
		eachHour(p.Days, func(k HourKey, v HourCounts) {
			rows = append(rows, []any{k.Link, time.Unix(k.Hour, 0).UTC(), v.Clicks, v.Bots})
		})
	}
	if len(rows) == 0 {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE hours_stage (link_id bigint, hour timestamptz, clicks bigint, bot_clicks bigint) ON COMMIT DROP`); err != nil {
		return 0, fmt.Errorf("create staging table: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"hours_stage"}, []string{"link_id", "hour", "clicks", "bot_clicks"}, pgx.CopyFromRows(rows)); err != nil {
		return 0, fmt.Errorf("copy hourly counts: %w", err)
	}
	upsert := `INSERT INTO clicks_hourly (link_id, hour, clicks, bot_clicks)
		SELECT link_id, hour, clicks, bot_clicks FROM hours_stage
		ON CONFLICT (link_id, hour) DO UPDATE SET clicks = clicks_hourly.clicks + EXCLUDED.clicks,
			bot_clicks = clicks_hourly.bot_clicks + EXCLUDED.bot_clicks`
	if !add {
		upsert = `INSERT INTO clicks_hourly (link_id, hour, clicks, bot_clicks)
		SELECT link_id, hour, clicks, bot_clicks FROM hours_stage
		ON CONFLICT (link_id, hour) DO UPDATE SET clicks = EXCLUDED.clicks, bot_clicks = EXCLUDED.bot_clicks`
	}
	if _, err := tx.Exec(ctx, upsert); err != nil {
		return 0, fmt.Errorf("upsert hourly counts: %w", err)
	}
	return len(rows), nil
}

// writeDays stores the daily rows. With merge, each is merged with the row
// stored for its link and day (counts added, dimension counts added,
// visitor sets merged); otherwise it replaces it. Rows for link-days not
// stored yet (in a run, most) are copied straight into link_daily; only
// those that exist go through a staging table and an UPDATE.
func writeDays(ctx context.Context, tx pgx.Tx, parts []*Partial, names *dims.Shared, merge bool) (int, error) {
	days := map[DayKey]*Day{}
	for _, p := range parts {
		for k, d := range p.Days {
			days[k] = d // partitions hold disjoint links
		}
	}
	if len(days) == 0 {
		return 0, nil
	}
	stored := map[DayKey]bool{}
	if merge {
		var err error
		if stored, err = mergeStored(ctx, tx, days, names); err != nil {
			return 0, err
		}
	}
	table := names.Names()
	var fresh, existing [][]any
	var buf []byte
	for k, d := range days {
		sk, err := d.Visitors.AppendBinary(nil)
		if err != nil {
			return 0, fmt.Errorf("encode uniques: %w", err)
		}
		buf = d.AppendDimsJSON(buf[:0], table)
		row := []any{k.Link, dayDate(k.Day), d.Clicks, d.Bots, sk, string(buf)}
		if stored[k] {
			existing = append(existing, row)
		} else {
			fresh = append(fresh, row)
		}
	}
	cols := []string{"link_id", "day", "clicks", "bot_clicks", "uniques", "dims"}
	if len(fresh) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"link_daily"}, cols, pgx.CopyFromRows(fresh)); err != nil {
			return 0, fmt.Errorf("copy daily rows: %w", err)
		}
	}
	if len(existing) > 0 {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE days_stage (LIKE link_daily) ON COMMIT DROP`); err != nil {
			return 0, fmt.Errorf("create staging table: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"days_stage"}, cols, pgx.CopyFromRows(existing)); err != nil {
			return 0, fmt.Errorf("copy daily rows: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE link_daily d SET clicks = s.clicks, bot_clicks = s.bot_clicks,
			uniques = s.uniques, dims = s.dims FROM days_stage s WHERE d.link_id = s.link_id AND d.day = s.day`); err != nil {
			return 0, fmt.Errorf("update daily rows: %w", err)
		}
	}
	return len(days), nil
}

// mergeStored folds the stored rows of the same links and days into days,
// and returns which were stored. The run lock makes this read-modify-write
// safe.
func mergeStored(ctx context.Context, tx pgx.Tx, days map[DayKey]*Day, names *dims.Shared) (map[DayKey]bool, error) {
	links := make([]int64, 0, len(days))
	dates := make([]time.Time, 0, len(days))
	for k := range days {
		links = append(links, k.Link)
		dates = append(dates, dayDate(k.Day))
	}
	rows, err := tx.Query(ctx, `SELECT d.link_id, d.day, d.clicks, d.bot_clicks, d.uniques, d.dims FROM link_daily d
		JOIN unnest($1::bigint[], $2::date[]) AS k(link_id, day) USING (link_id, day)`, links, dates)
	if err != nil {
		return nil, fmt.Errorf("read stored daily rows: %w", err)
	}
	defer rows.Close()
	stored := map[DayKey]bool{}
	for rows.Next() {
		var (
			link          int64
			day           time.Time
			clicks, bots  int64
			uniques, dimj []byte
		)
		if err := rows.Scan(&link, &day, &clicks, &bots, &uniques, &dimj); err != nil {
			return nil, fmt.Errorf("read stored daily rows: %w", err)
		}
		k := DayKey{link, int32(day.Unix() / 86400)}
		d := days[k]
		if d == nil {
			continue
		}
		stored[k] = true
		d.Clicks += clicks
		d.Bots += bots
		var storedDims sfsql.Dims
		if err := json.Unmarshal(dimj, &storedDims); err != nil {
			return nil, fmt.Errorf("decode stored dimensions of link %d: %w", link, err)
		}
		for name, vals := range storedDims {
			dim, ok := dimIndex[name]
			if !ok {
				continue // a dimension this build does not count
			}
			for v, n := range vals {
				d.values.add(dim, names.ID(v), n)
			}
		}
		storedVisitors, err := sfsql.DecodeVisitors(uniques)
		if err != nil {
			return nil, err
		}
		if err := d.Visitors.Merge(storedVisitors); err != nil {
			return nil, fmt.Errorf("merge uniques of link %d: %w", link, err)
		}
	}
	return stored, rows.Err()
}
