package job

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/mapreduce/internal/aggregate"
	"shortfleet/mapreduce/internal/aggregate/aggregatetest"
	"shortfleet/mapreduce/internal/dims"
	"shortfleet/provisioning/pgcluster"
)

// reducedLocal aggregates the local segments (aggregate's
// BenchmarkLocalSegments's) into 8 partitions' totals, as a run does, with
// shared's value table.
func reducedLocal(b *testing.B, shared *dims.Shared) []*aggregate.Partial {
	segs, err := aggregatetest.LocalSegments()
	if err != nil {
		b.Fatal(err)
	}
	c := shared.NewClassifier()
	totals := aggregate.NewTotals(8)
	var s aggregate.Scratch
	for _, data := range segs {
		if _, err := s.MapSegment(data, c, nil); err != nil {
			b.Fatal(err)
		}
		totals.Fold(&s)
	}
	return totals.Partials()
}

// BenchmarkCommit measures writing a run's aggregates (the local segments'
// 1,000,000 records) to a real Postgres: "fresh" into empty tables, "merge"
// onto the same link-days already stored, as a run's aggregates of a busy
// day are. It reports the hourly and daily writes' shares, and the read
// and merge of the stored days (which runs beside the hourly write).
func BenchmarkCommit(b *testing.B) {
	_, db := pgcluster.StartTestDatabase(b)
	ctx := context.Background()
	shared, err := dims.NewShared(aggregatetest.Dims(b))
	if err != nil {
		b.Fatal(err)
	}
	defer shared.Close()
	// One connection, with the job's session settings, as a run has.
	conn, err := db.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET temp_buffers = '`+TempBuffers+`'`); err != nil {
		b.Fatal(err)
	}
	for _, merge := range []bool{false, true} {
		name := "fresh"
		if merge {
			name = "merge"
		}
		b.Run(name, func(b *testing.B) {
			var stored, hours, days time.Duration
			var rows int
			for b.Loop() {
				b.StopTimer()
				if !merge {
					if _, err := db.Exec(ctx, `TRUNCATE clicks_hourly, link_daily`); err != nil {
						b.Fatal(err)
					}
				}
				parts := reducedLocal(b, shared)
				b.StartTimer()
				err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					w, err := writeAggregates(ctx, tx, parts, shared, db)
					stored += w.storedTook
					hours += w.hoursTook
					days += w.daysTook
					rows = w.hours + w.days
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(stored.Seconds()/float64(b.N), "stored-s/op")
			b.ReportMetric(hours.Seconds()/float64(b.N), "hours-s/op")
			b.ReportMetric(days.Seconds()/float64(b.N), "days-s/op")
			b.ReportMetric(float64(rows), "rows")
		})
	}
}

// BenchmarkMergeRows measures mergeRow alone, on one core and without
// Postgres: the local segments' days, encoded as link_daily holds them,
// merged into the same days, as mergeStored's workers merge a window whose
// link-days are all stored.
func BenchmarkMergeRows(b *testing.B) {
	shared, err := dims.NewShared(aggregatetest.Dims(b))
	if err != nil {
		b.Fatal(err)
	}
	defer shared.Close()
	parts := reducedLocal(b, shared)
	enc := <-encodeDays(parts, shared.Names(), nil)
	if enc.err != nil {
		b.Fatal(enc.err)
	}
	rows := make([]storedRow, len(enc.fresh))
	for i, r := range enc.fresh {
		rows[i] = storedRow{r.link, r.day, r.clicks, r.bots, r.uniques, r.dims}
	}
	stored := map[aggregate.DayKey]bool{}
	dec := newDimsDecoder(shared)
	var dimsEnc aggregate.DimsEncoder
	var buf []byte
	// CPU time as well as wall: on a shared machine it varies less.
	cpu0 := cpuTime(b)
	for b.Loop() {
		for i := range rows {
			if buf, _, _, err = mergeRow(&rows[i], parts, shared, stored, dec, &dimsEnc, buf); err != nil {
				b.Fatal(err)
			}
			// Nothing keeps the merged rows.
			buf = buf[:0]
		}
	}
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(len(rows)*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
