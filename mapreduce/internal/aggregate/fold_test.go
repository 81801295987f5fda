package aggregate

import (
	"bytes"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"shortfleet/logfmt"
	"shortfleet/logfmt/logfmttest"
	"shortfleet/mapreduce/internal/aggregate/aggregatetest"
	"shortfleet/mapreduce/internal/dims"
	sfsql "shortfleet/sql"
)

// dayView is what a run writes of a day: its counts, hours, dimension
// values and visitors.
type dayView struct {
	Clicks, Bots int64
	Hours        []DayHour
	Dims         sfsql.Dims
	Visitors     uint64
}

// viewOf is every day of parts, as dayViews, and checks each link is in
// its partition.
func viewOf(t *testing.T, parts []*Partial, s *dims.Shared) map[DayKey]dayView {
	t.Helper()
	out := map[DayKey]dayView{}
	for i, p := range parts {
		for k, d := range p.Days {
			if PartitionOf(k.Link(), len(parts)) != i {
				t.Fatalf("link %d in partition %d, want %d", k.Link(), i, PartitionOf(k.Link(), len(parts)))
			}
			hs := slices.Clone(d.Hours())
			slices.SortFunc(hs, func(a, b DayHour) int { return int(a.Hour - b.Hour) })
			out[k] = dayView{d.Clicks, d.Bots, hs, d.Dims(s), d.Visitors().Count()}
		}
	}
	return out
}

// genSegments writes n segments of realistic records (logfmttest), each
// in batches of flushRows.
func genSegments(t *testing.T, n, records, flushRows int) [][]byte {
	t.Helper()
	var segs [][]byte
	for i := range n {
		g := logfmttest.New(uint64(i), 300, t0, 5*time.Minute)
		recs := make([]logfmt.Record, records)
		for j := range recs {
			g.Next(&recs[j], j, len(recs))
			recs[j] = cloneRecord(recs[j])
		}
		segs = append(segs, segmentOf(t, recs, flushRows))
	}
	return segs
}

// TestFoldMatchesReduce: segments mapped whole and folded into totals by
// concurrent workers give, partition by partition, exactly the days a
// partial per segment, partitioned and reduced, gives.
func TestFoldMatchesReduce(t *testing.T) {
	segs := genSegments(t, 6, 3000, 400)
	shared, err := dims.NewShared(aggregatetest.Dims(t))
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	const partitions = 4

	c := shared.NewClassifier()
	byPart := make([][]*Partial, partitions)
	for _, data := range segs {
		p, _, err := MapCombine(data, c)
		if err != nil {
			t.Fatal(err)
		}
		for i, pp := range Partition(p, partitions) {
			byPart[i] = append(byPart[i], pp)
		}
	}
	reduced := make([]*Partial, partitions)
	for i := range reduced {
		if reduced[i], err = Reduce(byPart[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := viewOf(t, reduced, shared)

	totals := NewTotals(partitions)
	var wg sync.WaitGroup
	next := make(chan []byte, len(segs))
	for _, s := range segs {
		next <- s
	}
	close(next)
	errs := make(chan error, 3)
	for range 3 {
		c := shared.NewClassifier()
		wg.Go(func() {
			var s Scratch
			for data := range next {
				if _, err := s.MapSegment(data, c, nil); err != nil {
					errs <- err
					return
				}
				totals.Fold(&s)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := viewOf(t, totals.Partials(), shared)
	if len(got) != len(want) {
		t.Fatalf("%d days folded, %d reduced", len(got), len(want))
	}
	// The busiest days are past sfsql.ExactMax visitors, so both paths'
	// sparse sketch keys (visitors.go) are compared too.
	sketches := 0
	for _, p := range totals.Partials() {
		for _, d := range p.Days {
			if d.Visitors().Sketch != nil {
				sketches++
			}
		}
	}
	if sketches == 0 {
		t.Fatal("no day folded past sfsql.ExactMax visitors")
	}
	t.Logf("%d of %d days past sfsql.ExactMax visitors", sketches, len(got))
	for k, w := range want {
		if g := got[k]; !reflect.DeepEqual(g, w) {
			t.Fatalf("link %d day %d: folded %+v, reduced %+v", k.Link(), k.Day(), g, w)
		}
	}
}

// TestFoldDamagedSegmentAddsNothing: a segment whose later batch is
// damaged fails MapSegment after its first batches have been mapped, and
// folding the scratch then adds none of its clicks: the totals are the
// good segments' alone. A segment that maps but is then rejected by the
// caller (not folded) adds nothing either, and the scratch's next segment
// does not bring its clicks along.
func TestFoldDamagedSegmentAddsNothing(t *testing.T) {
	segs := genSegments(t, 3, 2000, 250)
	good, rejected := segs[0], segs[2]
	damaged := inBatches(t, segs[1], 500)
	damaged = damaged[:len(damaged)-20] // cuts into the last batch's body

	// The damage is after whole batches holding clicks: a fold per batch
	// would have counted them.
	rd, err := logfmt.NewColumnsReader(damaged, mapColumns...)
	if err != nil {
		t.Fatal(err)
	}
	readBefore := 0
	for rd.Next() {
		readBefore += rd.Batch().Len()
	}
	if rd.Err() == nil || readBefore == 0 {
		t.Fatalf("damaged segment: %d records read before the error %v; want some, then an error", readBefore, rd.Err())
	}
	rd.Release()

	shared, err := dims.NewShared(aggregatetest.Dims(t))
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	c := shared.NewClassifier()

	only := NewTotals(4)
	var s Scratch
	if _, err := s.MapSegment(good, c, nil); err != nil {
		t.Fatal(err)
	}
	only.Fold(&s)
	want := viewOf(t, only.Partials(), shared)

	totals := NewTotals(4)
	if _, err := s.MapSegment(rejected, c, nil); err != nil || len(s.Clicks()) == 0 {
		t.Fatalf("rejected segment: %d clicks, %v", len(s.Clicks()), err)
	}
	// Rejected by the caller: not folded.
	n, err := s.MapSegment(damaged, c, nil)
	if err == nil {
		t.Fatalf("damaged segment mapped without error (%d records)", n)
	}
	if len(s.Clicks()) != 0 {
		t.Fatalf("scratch holds %d clicks of a segment that failed", len(s.Clicks()))
	}
	totals.Fold(&s) // a careless caller: must add nothing
	if _, err := s.MapSegment(good, c, nil); err != nil {
		t.Fatal(err)
	}
	totals.Fold(&s)
	totals.Fold(&s) // folded once: the second adds nothing
	got := viewOf(t, totals.Partials(), shared)
	if !reflect.DeepEqual(got, want) {
		var clicks [2]int64
		for i, v := range []map[DayKey]dayView{got, want} {
			for _, d := range v {
				clicks[i] += d.Clicks
			}
		}
		t.Fatalf("totals hold %d clicks over %d days, the good segment alone %d over %d", clicks[0], len(got), clicks[1], len(want))
	}
}

// inBatches writes a sealed segment's records again, strings spelled out
// (the open version), in batches of n records (a sealed segment is one
// batch), or with n 0, in its own batches.
func inBatches(t *testing.T, seg []byte, n int64) []byte {
	t.Helper()
	rd, err := logfmt.NewBytesReader(seg)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	var buf bytes.Buffer
	var w *ipc.Writer
	for rd.Next() {
		rec, err := rd.Batch().Plain()
		if err != nil {
			t.Fatal(err)
		}
		if w == nil {
			w = ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()), ipc.WithZstd())
		}
		step := n
		if step <= 0 {
			step = max(rec.NumRows(), 1)
		}
		for lo := int64(0); lo < rec.NumRows(); lo += step {
			part := rec.NewSlice(lo, min(lo+step, rec.NumRows()))
			if err := w.Write(part); err != nil {
				t.Fatal(err)
			}
			part.Release()
		}
		rec.Release()
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
