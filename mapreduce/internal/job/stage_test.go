package job

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/provisioning/pgcluster"
)

// TestStageDaysStreamed stages daily rows that come in batches, some only
// after the COPY has sent all it had (the copy then waits for the next),
// and wants every row staged once, with its values. Rows large enough to
// fill several of copyStream's buffers make it cut batches across them.
func TestStageDaysStreamed(t *testing.T) {
	_, db := pgcluster.StartTestDatabase(t)
	ctx := context.Background()
	const batches, per = 6, 700
	dims := []byte(`{"referrer":{"news.example":1}}`)
	uniques := make([]byte, 200)
	ch := make(chan []dayRow, batches)
	go func() {
		for b := range batches {
			rows := make([]dayRow, per)
			for i := range rows {
				n := int64(b*per + i)
				rows[i] = dayRow{link: n, day: 20000 + int32(n%3), clicks: n, bots: 1, uniques: uniques, dims: dims}
			}
			ch <- rows
			if b%2 == 1 {
				// Let the COPY run dry and wait.
				time.Sleep(50 * time.Millisecond)
			}
		}
		close(ch)
	}()
	var staged, count, clicks int64
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		n, err := stageDays(ctx, tx, ch)
		if err != nil {
			return err
		}
		staged = int64(n)
		return tx.QueryRow(ctx, `SELECT count(*), sum(clicks) FROM days_stage WHERE bot_clicks = 1 AND length(uniques) = 200 AND dims::text = $1`,
			string(dims)).Scan(&count, &clicks)
	})
	if err != nil {
		t.Fatal(err)
	}
	const rows = batches * per
	if staged != rows || count != rows || clicks != rows*(rows-1)/2 {
		t.Fatalf("staged %d, %d rows as sent, clicks %d; want %d rows, clicks %d", staged, count, clicks, rows, rows*(rows-1)/2)
	}
	// Nothing to stage: no table, no copy.
	empty := make(chan []dayRow)
	close(empty)
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		n, err := stageDays(ctx, tx, empty)
		if err == nil && n != 0 {
			t.Errorf("staged %d rows from none", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUpdateDaysByIndex updates a window's staged days where link_daily
// holds many more days than the window: the planner, left to itself,
// hashes the whole table (its cost would grow with every day stored);
// writeDays must go through the primary key instead, write the staged
// values over exactly the stored rows of the window, and leave the
// planner's settings as they were for the rest of the transaction.
func TestUpdateDaysByIndex(t *testing.T) {
	_, db := pgcluster.StartTestDatabase(t)
	ctx := context.Background()
	const links, history = 2000, 30
	const today = 20000
	plan := func(tx pgx.Tx) (string, error) {
		var b strings.Builder
		rows, err := tx.Query(ctx, "EXPLAIN "+updateDaysSQL)
		if err != nil {
			return "", err
		}
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				return "", err
			}
			b.WriteString(l + "\n")
		}
		return b.String(), rows.Err()
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO link_daily (link_id, day, clicks, bot_clicks, uniques, dims)
			SELECT l, date '1970-01-01' + $1::int - d, 1, 0, '\x00', '{}' FROM generate_series(1, $2::int) l, generate_series(0, $3::int - 1) d`,
			today, links, history); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `ANALYZE link_daily`); err != nil {
			return err
		}
		ch := make(chan []dayRow, 1)
		rows := make([]dayRow, links)
		for i := range rows {
			rows[i] = dayRow{link: int64(i + 1), day: today, clicks: 7, bots: 2, uniques: []byte{1}, dims: []byte(`{"country":{"CH":7}}`)}
		}
		ch <- rows
		close(ch)
		staged, err := stageDays(ctx, tx, ch)
		if err != nil {
			return err
		}
		free, err := plan(tx)
		if err != nil {
			return err
		}
		if !strings.Contains(free, "Seq Scan on link_daily") {
			t.Fatalf("the planner left alone no longer scans link_daily here, so this test shows nothing; plan:\n%s", free)
		}
		var forced string
		if err := byIndex(ctx, tx, func() (err error) { forced, err = plan(tx); return err }); err != nil {
			return err
		}
		if strings.Contains(forced, "Seq Scan on link_daily") || !strings.Contains(forced, "link_daily_pkey") {
			t.Errorf("byIndex's plan does not go through link_daily's primary key:\n%s", forced)
		}
		enc := make(chan dayRows, 1)
		enc <- dayRows{}
		n, _, err := writeDays(ctx, tx, enc, staged)
		if err != nil {
			return err
		}
		var hash string
		if err := tx.QueryRow(ctx, `SHOW enable_hashjoin`).Scan(&hash); err != nil {
			return err
		}
		var todays, todayClicks, others, otherClicks int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE day = date '1970-01-01' + $1::int AND bot_clicks = 2 AND dims::text = '{"country":{"CH":7}}'),
			coalesce(sum(clicks) FILTER (WHERE day = date '1970-01-01' + $1::int), 0),
			count(*) FILTER (WHERE day < date '1970-01-01' + $1::int), coalesce(sum(clicks) FILTER (WHERE day < date '1970-01-01' + $1::int), 0) FROM link_daily`,
			today).Scan(&todays, &todayClicks, &others, &otherClicks); err != nil {
			return err
		}
		if n != links || todays != links || todayClicks != 7*links || others != links*(history-1) || otherClicks != links*(history-1) || hash != "on" {
			t.Errorf("wrote %d; today %d rows as staged with %d clicks, earlier %d rows with %d clicks, enable_hashjoin %s afterwards; want %d, %d, %d, %d, %d, on",
				n, todays, todayClicks, others, otherClicks, hash, links, links, 7*links, links*(history-1), links*(history-1))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
