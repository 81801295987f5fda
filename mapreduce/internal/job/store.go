package job

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"shortfleet/mapreduce/internal/aggregate"
	"shortfleet/mapreduce/internal/dims"
	sfsql "shortfleet/sql"
)

// commit writes a run's aggregates, its ledger rows and the run's figures
// in one transaction: the hourly counts through COPY into a staging table
// and one additive upsert, the daily rows merged with what is stored. A
// ledger row that exists already aborts everything, so a segment is never
// counted twice even if the lock were bypassed.
func (j *Job) commit(ctx context.Context, conn *pgx.Conn, done []*segment, reduced []*aggregate.Partial, res *Result) error {
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
	var aggregates int
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		deleted, err := dropTombstoned(ctx, tx, reduced)
		if err != nil {
			return err
		}
		for _, p := range reduced {
			clicks += p.Clicks()
		}
		w, err := writeAggregates(ctx, tx, reduced, j.dims, j.db)
		if err != nil {
			return err
		}
		aggregates = w.hours + w.days
		capped, err := stopCapped(ctx, tx, reduced)
		if err != nil {
			return err
		}
		w.capped = capped
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ingested_segments"},
			[]string{"proxy", "name", "sha256", "rows", "bytes", "status", "reason", "run_id", "min_time", "max_time"},
			pgx.CopyFromRows(ledger)); err != nil {
			return fmt.Errorf("record ingested segments: %w", err)
		}
		if _, err = tx.Exec(ctx, `UPDATE mapreduce_runs SET finished_at = now(), segments = $2, records = $3,
			clicks = $4, quarantined = $5, proxies_down = $6, failed = $7, unknown_version = $8 WHERE id = $1`,
			res.RunID, ingested, records, clicks, quarantined, len(res.ProxiesDown), len(res.Failed), res.UnknownVersion); err != nil {
			return err
		}
		// Everything is written, nothing committed: a crash here must leave
		// no trace.
		j.stage(ctx, "written", "stored_took", w.storedTook.Round(time.Millisecond), "hours", w.hours, "hours_took", w.hoursTook.Round(time.Millisecond),
			"days_staged_took", w.stageTook.Round(time.Millisecond), "days", w.days, "days_took", w.daysTook.Round(time.Millisecond), "days_encode_wait", w.daysWait.Round(time.Millisecond), "ledger_rows", len(ledger), "links_capped", w.capped, "links_deleted", deleted)
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit run: %w", err)
	}
	res.Segments, res.Records, res.Clicks, res.Aggregates, res.Quarantined = ingested, records, clicks, aggregates, quarantined
	return nil
}

// written is what writeAggregates wrote, and how long each part took.
type written struct {
	hours, days                     int
	storedTook, hoursTook, daysTook time.Duration
	stageTook                       time.Duration // staging the merged days, while they were read
	daysWait                        time.Duration // of daysTook, waiting for the rows' encoding
	capped                          int64         // links stopped at their click cap
}

// writeAggregates stores the partitions' hourly and daily rows. With db
// (a run), each is added to, or merged with, the row stored for its link
// and hour or day; without (a recompute, which has deleted the day's
// rows) the rows are new.
//
// A run reads the stored daily rows back (their visitor sketches can
// only be merged here) on a second connection of db while Postgres takes
// the hours in tx: the hours do not depend on them, and the run lock
// keeps every other writer of link_daily out, so reading them outside
// the transaction sees what reading them inside would. The daily rows
// are written in tx, with the ledger, as before.
//
// Most of a run's link-days are not stored yet, and a link-day is never
// stored without its hours: those rows go straight into the tables with
// COPY, and only the others through staging tables, an additive upsert
// and an UPDATE. A stored day is complete once its stored row is merged:
// the merging cores encode it then (dimension JSON, visitor set), and
// once the hours are in, tx copies the merged days into the staging
// table as they come, while the read goes on (a window after a day's
// first is nearly all such days). The days not stored are encoded when
// the read has told which they are.
func writeAggregates(ctx context.Context, tx pgx.Tx, parts []*aggregate.Partial, names *dims.Shared, db *pgxpool.Pool) (written, error) {
	var w written
	type read struct {
		enc  <-chan dayRows
		took time.Duration
		err  error
	}
	var reading chan read
	// merged are the stored days, merged and encoded as their stored rows
	// come, in batches; closed when the read ends.
	var merged chan []dayRow
	if db != nil {
		reading = make(chan read, 1)
		merged = make(chan []dayRow, mergedBatches(parts))
		go func() {
			t := time.Now()
			var r read
			conn, err := db.Acquire(ctx)
			if err != nil {
				r.err = fmt.Errorf("read stored daily rows: %w", err)
				close(merged)
			} else {
				var stored map[aggregate.DayKey]bool
				stored, r.err = mergeStored(ctx, conn, parts, names, merged)
				conn.Release()
				if r.err == nil {
					// Encoded while Postgres may still take the hours.
					r.enc = encodeDays(parts, names.Names(), stored)
				}
			}
			r.took = time.Since(t)
			reading <- r
		}()
	}
	var enc <-chan dayRows
	if db == nil {
		enc = encodeDays(parts, names.Names(), nil)
	}
	t := time.Now()
	n, err := writeHours(ctx, tx, parts)
	w.hours, w.hoursTook = n, time.Since(t)
	var staged int
	if err == nil && merged != nil {
		// The merged days go to the staging table as they come, while
		// the read goes on.
		t = time.Now()
		staged, err = stageDays(ctx, tx, merged)
		w.stageTook = time.Since(t)
	}
	if reading != nil {
		// Waited for even if the hours failed: the read works on parts.
		for range merged {
			// What the failed write left unstaged.
		}
		r := <-reading
		enc, w.storedTook = r.enc, r.took
		if err == nil {
			err = r.err
		}
	}
	if err != nil {
		return w, err
	}
	t = time.Now()
	if w.days, w.daysWait, err = writeDays(ctx, tx, enc, staged); err != nil {
		return w, err
	}
	w.daysTook = time.Since(t)
	return w, nil
}

// mergedBatches bounds the batches mergeStored can send: the channel
// holds them all, so a worker never waits for the write.
func mergedBatches(parts []*aggregate.Partial) int {
	n := 0
	for _, p := range parts {
		n += len(p.Days)
	}
	return n/mergedBatch + runtime.GOMAXPROCS(0) + 1
}

// mergedBatch is how many merged days a worker sends at once.
const mergedBatch = 256

// hourRow is a row of clicks_hourly.
type hourRow struct {
	link         int64
	hour         int64 // Unix seconds
	clicks, bots int64
}

var hourCols = []string{"link_id", "hour", "clicks", "bot_clicks"}

// copyHours copies rows into table (clicks_hourly or its staging table).
func copyHours(ctx context.Context, tx pgx.Tx, table string, rows []hourRow) error {
	return copyBinary(ctx, tx, table, hourCols, len(rows), func(b []byte, i int) []byte {
		r := &rows[i]
		b = copyRow(b, 4)
		b = copyInt8(b, r.link)
		b = copyTimestamp(b, r.hour)
		b = copyInt8(b, r.clicks)
		return copyInt8(b, r.bots)
	})
}

// writeHours stores the hourly counts: straight into clicks_hourly
// with COPY, which stops at the first hour already stored (a savepoint
// undoes what it wrote), and then all of them added to what is stored.
// It needs no read of what is stored: in a window whose hours are new
// (a day's or an hour's first) the COPY takes them all, and in one
// whose hours are mostly stored it stops at one of the first rows. Only
// a window whose few stored hours sort late copies much in vain.
func writeHours(ctx context.Context, tx pgx.Tx, parts []*aggregate.Partial) (int, error) {
	var fresh, existing []hourRow
	for _, p := range parts {
		for k, d := range p.Days {
			for _, h := range d.Hours() {
				fresh = append(fresh, hourRow{k.Link(), int64(k.Day())*86400 + h.Hour*3600, h.Clicks, h.Bots})
			}
		}
	}
	if len(fresh) > 0 {
		// In key order, the primary key's index is filled page by page
		// instead of at random.
		slices.SortFunc(fresh, func(a, b hourRow) int {
			return cmp.Or(cmp.Compare(a.link, b.link), cmp.Compare(a.hour, b.hour))
		})
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			return copyHours(ctx, sp, "clicks_hourly", fresh)
		})
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "23505":
			fresh, existing = nil, fresh
		case err != nil:
			return 0, fmt.Errorf("copy hourly counts: %w", err)
		}
	}
	if len(existing) > 0 {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE hours_stage (link_id bigint, hour timestamptz, clicks bigint, bot_clicks bigint) ON COMMIT DROP`); err != nil {
			return 0, fmt.Errorf("create staging table: %w", err)
		}
		if err := copyHours(ctx, tx, "hours_stage", existing); err != nil {
			return 0, fmt.Errorf("copy hourly counts: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO clicks_hourly (link_id, hour, clicks, bot_clicks)
			SELECT link_id, hour, clicks, bot_clicks FROM hours_stage
			ON CONFLICT (link_id, hour) DO UPDATE SET clicks = clicks_hourly.clicks + EXCLUDED.clicks,
				bot_clicks = clicks_hourly.bot_clicks + EXCLUDED.bot_clicks`); err != nil {
			return 0, fmt.Errorf("upsert hourly counts: %w", err)
		}
	}
	return len(fresh) + len(existing), nil
}

// dayRow is a row of link_daily, encoded.
type dayRow struct {
	link          int64
	day           int32 // since 1970-01-01
	clicks, bots  int64
	uniques, dims []byte
}

// dayRows are the daily rows new to link_daily.
type dayRows struct {
	fresh []dayRow
	err   error
}

// encodeDay appends the encoding of k's day d (its visitors, its
// dimensions' JSON) to buf and returns its row, which points into buf.
func encodeDay(buf []byte, k aggregate.DayKey, d *aggregate.Day, table []string, dimsEnc *aggregate.DimsEncoder) ([]byte, dayRow, error) {
	start := len(buf)
	var err error
	if buf, err = d.Visitors().AppendBinary(buf); err != nil {
		return buf, dayRow{}, fmt.Errorf("encode uniques: %w", err)
	}
	mid := len(buf)
	buf = dimsEnc.Append(buf, d, table)
	return buf, dayRow{k.Link(), k.Day(), d.Clicks, d.Bots, buf[start:mid:mid], buf[mid:len(buf):len(buf)]}, nil
}

// encodeDays encodes the partitions' daily rows that are not stored (the
// stored were encoded as they were merged), in parallel, and returns a
// channel that yields them, in key order, when they are ready.
func encodeDays(parts []*aggregate.Partial, table []string, stored map[aggregate.DayKey]bool) <-chan dayRows {
	each := make([]dayRows, len(parts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, p := range parts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rs := &each[i]
			// One buffer for all of the partition's encodings, sized for
			// a quiet day's (one visitor, a value of each dimension: 150
			// bytes or so) so it rarely grows, copying all it holds.
			buf := make([]byte, 0, 192*max(len(p.Days)-len(stored)/len(parts), 0))
			var dimsEnc aggregate.DimsEncoder
			for k, d := range p.Days {
				if stored[k] {
					continue
				}
				var r dayRow
				var err error
				if buf, r, err = encodeDay(buf, k, d, table, &dimsEnc); err != nil {
					rs.err = err
					return
				}
				rs.fresh = append(rs.fresh, r)
			}
		})
	}
	out := make(chan dayRows, 1)
	go func() {
		wg.Wait()
		var all dayRows
		var errs []error
		nf := 0
		for _, rs := range each {
			nf += len(rs.fresh)
		}
		all.fresh = make([]dayRow, 0, nf)
		for _, rs := range each {
			errs = append(errs, rs.err)
			all.fresh = append(all.fresh, rs.fresh...)
		}
		all.err = errors.Join(errs...)
		// In key order, the primary key's index is filled page by page
		// instead of at random.
		slices.SortFunc(all.fresh, func(a, b dayRow) int {
			return cmp.Or(cmp.Compare(a.link, b.link), cmp.Compare(a.day, b.day))
		})
		out <- all
	}()
	return out
}

var dayCols = []string{"link_id", "day", "clicks", "bot_clicks", "uniques", "dims"}

// appendDayRow appends r in COPY's binary format, as dayCols.
func appendDayRow(b []byte, r *dayRow) []byte {
	b = copyRow(b, 6)
	b = copyInt8(b, r.link)
	b = copyDate(b, r.day)
	b = copyInt8(b, r.clicks)
	b = copyInt8(b, r.bots)
	b = copyBytes(b, r.uniques)
	return copyBytes(b, r.dims)
}

// copyDays copies rows into table (link_daily).
func copyDays(ctx context.Context, tx pgx.Tx, table string, rows []dayRow) error {
	return copyBinary(ctx, tx, table, dayCols, len(rows), func(b []byte, i int) []byte {
		return appendDayRow(b, &rows[i])
	})
}

// stageDays copies the merged days into a staging table, days_stage, as
// they come from batches, until it is closed; it creates the table at
// the first. It returns how many it staged.
func stageDays(ctx context.Context, tx pgx.Tx, batches <-chan []dayRow) (int, error) {
	first, ok := <-batches
	if !ok {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE days_stage (LIKE link_daily) ON COMMIT DROP`); err != nil {
		return 0, fmt.Errorf("create staging table: %w", err)
	}
	src := &copyStream{batches: batches, cur: first}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, src, copySQL("days_stage", dayCols)); err != nil {
		return src.n, fmt.Errorf("copy daily rows: %w", err)
	}
	return src.n, nil
}

// writeDays stores the daily rows: new ones copied straight into
// link_daily, the staged ones (stageDays's, merged with the stored)
// replacing the stored.
func writeDays(ctx context.Context, tx pgx.Tx, enc <-chan dayRows, staged int) (int, time.Duration, error) {
	t := time.Now()
	rs := <-enc
	wait := time.Since(t)
	if rs.err != nil {
		return 0, wait, rs.err
	}
	fresh := rs.fresh
	if len(fresh) > 0 {
		if err := copyDays(ctx, tx, "link_daily", fresh); err != nil {
			return 0, wait, fmt.Errorf("copy daily rows: %w", err)
		}
	}
	if staged > 0 {
		if err := byIndex(ctx, tx, func() error {
			_, err := tx.Exec(ctx, updateDaysSQL)
			return err
		}); err != nil {
			return 0, wait, fmt.Errorf("update daily rows: %w", err)
		}
	}
	return len(fresh) + staged, wait, nil
}

// updateDaysSQL replaces the stored daily rows with the staged ones.
const updateDaysSQL = `UPDATE link_daily d SET clicks = s.clicks, bot_clicks = s.bot_clicks,
	uniques = s.uniques, dims = s.dims FROM days_stage s WHERE d.link_id = s.link_id AND d.day = s.day`

// byIndex runs f, a statement joining a window's rows to a stats table,
// with the planner's hash and merge joins off, so it takes the rows one
// by one through the table's primary key: a cost set by the window's
// rows, whatever the days stored. Left to itself, the planner hashes the
// whole table until it holds millions of rows (TestUpdateDaysByIndex
// shows the choice). With ten days of a 3 M-record window's rows stored,
// the window's daily update took 1.91 s this way against 3.97 and 3.65 s
// (mapreducebench beside a59f260, bench/results/profiles-23/
// mergeplan-vs-a59f260-history9.log).
func byIndex(ctx context.Context, tx pgx.Tx, f func() error) error {
	if _, err := tx.Exec(ctx, `SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off`); err != nil {
		return err
	}
	err := f()
	if err == nil {
		_, err = tx.Exec(ctx, `RESET enable_hashjoin; RESET enable_mergejoin`)
	}
	return err
}

// mergeStored folds the stored rows of the same links and days into the
// partitions' days, sends each day so merged, encoded, to out in batches
// (a day has one stored row, so it is complete once that is merged), and
// returns which were stored. It closes out when it is done. The run lock
// makes this read-modify-write safe; conn is not the run's transaction's
// (see writeAggregates). out must hold all the batches it is sent
// (mergedBatches).
func mergeStored(ctx context.Context, conn *pgxpool.Conn, parts []*aggregate.Partial, names *dims.Shared, out chan<- []dayRow) (map[aggregate.DayKey]bool, error) {
	defer close(out)
	// In key order: Postgres looks each up in link_daily's primary key,
	// and in order the lookups walk the index and the heap page by page
	// instead of at random (in map order they land anywhere).
	var keys []aggregate.DayKey
	for _, p := range parts {
		for k := range p.Days {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	slices.Sort(keys) // the link in the high bits: by link, then day
	// Days go as numbers, not dates: pgx encodes an int array several
	// times faster than one of time.Time; they come back as the same
	// numbers.
	links := make([]int64, len(keys))
	days := make([]int32, len(keys))
	for i, k := range keys {
		links[i], days[i] = k.Link(), k.Day()
	}
	rows, err := conn.Query(ctx, `SELECT d.link_id, k.n, d.clicks, d.bot_clicks, d.uniques, d.dims FROM link_daily d
		JOIN unnest($1::bigint[], $2::int[]) AS k(link_id, n) ON d.link_id = k.link_id AND d.day = date '1970-01-01' + k.n`, links, days)
	if err != nil {
		return nil, fmt.Errorf("read stored daily rows: %w", err)
	}
	defer rows.Close()
	// Rows are read here and merged on every core: the decoding and
	// merging, not Postgres, took most of the read. A partition's days
	// all go to one worker, so no day is touched by two.
	workers := min(runtime.GOMAXPROCS(0), len(parts))
	batches := make([]chan []storedRow, workers)
	each := make([]map[aggregate.DayKey]bool, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		batches[w] = make(chan []storedRow, 4)
		each[w] = map[aggregate.DayKey]bool{}
		wg.Go(func() {
			dec := newDimsDecoder(names)
			var enc aggregate.DimsEncoder
			var buf []byte
			var done []dayRow
			for batch := range batches[w] {
				for i := range batch {
					if errs[w] != nil {
						continue
					}
					var r dayRow
					var merged bool
					if buf, r, merged, errs[w] = mergeRow(&batch[i], parts, names, each[w], dec, &enc, buf); merged {
						done = append(done, r)
					}
				}
				if len(done) >= mergedBatch {
					out <- done
					done = nil
				}
				if len(buf) > 1<<20 {
					// The rows sent point into it.
					buf = nil
				}
			}
			if len(done) > 0 {
				out <- done
			}
		})
	}
	pending := make([][]storedRow, workers)
	var err2 error
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.link, &r.day, &r.clicks, &r.bots, &r.uniques, &r.dims); err != nil {
			err2 = fmt.Errorf("read stored daily rows: %w", err)
			break
		}
		w := aggregate.PartitionOf(r.link, len(parts)) % workers
		pending[w] = append(pending[w], r)
		if len(pending[w]) == 256 {
			batches[w] <- pending[w]
			pending[w] = nil
		}
	}
	for w := range workers {
		if len(pending[w]) > 0 {
			batches[w] <- pending[w]
		}
		close(batches[w])
	}
	wg.Wait()
	if err := errors.Join(append(errs, err2, rows.Err())...); err != nil {
		return nil, err
	}
	stored := each[0]
	for _, m := range each[1:] {
		maps.Copy(stored, m)
	}
	return stored, nil
}

// storedRow is a stored row of link_daily, as read.
type storedRow struct {
	link          int64
	day           int32
	clicks, bots  int64
	uniques, dims []byte
}

// mergeRow folds a stored row into its day in parts, if the run has it,
// marks the day stored, and appends the merged day's encoding to buf
// (encodeDay).
func mergeRow(r *storedRow, parts []*aggregate.Partial, names *dims.Shared, stored map[aggregate.DayKey]bool,
	dec *dimsDecoder, enc *aggregate.DimsEncoder, buf []byte) ([]byte, dayRow, bool, error) {
	k := aggregate.MakeDayKey(r.link, r.day)
	d := parts[aggregate.PartitionOf(r.link, len(parts))].Days[k]
	if d == nil {
		return buf, dayRow{}, false, nil
	}
	stored[k] = true
	d.Clicks += r.clicks
	d.Bots += r.bots
	if err := dec.add(d, r.dims); err != nil {
		return buf, dayRow{}, false, fmt.Errorf("decode stored dimensions of link %d: %w", r.link, err)
	}
	if v := d.Visitors(); !v.MergeExact(r.uniques) {
		storedVisitors, err := sfsql.DecodeVisitors(r.uniques)
		if err != nil {
			return buf, dayRow{}, false, err
		}
		if err := v.Merge(storedVisitors); err != nil {
			return buf, dayRow{}, false, fmt.Errorf("merge uniques of link %d: %w", r.link, err)
		}
	}
	// The value table as it is now: the stored dimensions may have added
	// names.
	buf, row, err := encodeDay(buf, k, d, names.Names(), enc)
	return buf, row, err == nil, err
}

// TempBuffers is the job's session's temp_buffers: room in memory for a
// window's staged rows (a 3 M-record window stages about 320,000 daily
// rows, some 100 MB, and as many hourly), which with Postgres's 8 MB
// default went to and came back from temporary files. Postgres takes the
// memory only as the staging tables fill it.
const TempBuffers = "256MB"

// Session sets the job's session settings on the connection
// configuration of its pool: temp_buffers can only be set before a
// session's first temporary table, so at connection start.
func Session(cfg *pgx.ConnConfig) {
	cfg.RuntimeParams["temp_buffers"] = TempBuffers
}
