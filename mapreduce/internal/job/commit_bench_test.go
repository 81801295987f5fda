package job

import (
	"context"
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
// day are. It reports the hourly and daily writes' shares.
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
			var hours, days time.Duration
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
					hours += w.hoursTook
					days += w.daysTook
					rows = w.hours + w.days
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(hours.Seconds()/float64(b.N), "hours-s/op")
			b.ReportMetric(days.Seconds()/float64(b.N), "days-s/op")
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
