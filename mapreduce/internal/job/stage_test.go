package job

import (
	"context"
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
