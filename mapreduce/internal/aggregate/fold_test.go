package aggregate

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"shortfleet/logfmt"
	"shortfleet/logfmt/logfmttest"
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
	shared := newShared(t)
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
		var err error
		if reduced[i], err = Reduce(byPart[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := viewOf(t, reduced, shared)

	// Pending clicks are counted into days in Partials, or in Fold every
	// 1000 clicks, or in every Fold.
	for _, at := range []int{combineAt, 1000, 1} {
		t.Run(fmt.Sprint("combineAt=", at), func(t *testing.T) { foldMatches(t, segs, shared, partitions, at, want) })
	}
}

// foldMatches folds segs on three workers into totals that count their
// pending clicks combineAt at a time, and compares their days to want.
func foldMatches(t *testing.T, segs [][]byte, shared *dims.Shared, partitions, combineAt int, want map[DayKey]dayView) {
	totals := NewTotals(partitions)
	totals.combineAt = combineAt
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
	// Whether Fold counts clicks into days at once or leaves them pending
	// makes no difference.
	for _, at := range []int{combineAt, 1} {
		t.Run(fmt.Sprint("combineAt=", at), func(t *testing.T) { foldDamaged(t, at) })
	}
}

func foldDamaged(t *testing.T, combineAt int) {
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

	shared := newShared(t)
	c := shared.NewClassifier()

	only := NewTotals(4)
	only.combineAt = combineAt
	var s Scratch
	if _, err := s.MapSegment(good, c, nil); err != nil {
		t.Fatal(err)
	}
	only.Fold(&s)
	want := viewOf(t, only.Partials(), shared)

	totals := NewTotals(4)
	totals.combineAt = combineAt
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

// TestDayGrouper: grouping reorders clicks into buckets of their day
// (each bucket's clicks together, a day's all in one bucket) and keeps
// the order of each day's clicks, whatever the number of clicks: none,
// one, fewer than a bucket's share, more than the buckets' cap (2^14
// buckets of about four clicks), and a smaller group after a larger one
// in the same buffers.
func TestDayGrouper(t *testing.T) {
	var g dayGrouper
	for _, n := range []int{0, 1, 7, 1000, 200_000, 3} {
		clicks := make([]Click, n)
		x := uint64(n)
		for i := range clicks {
			x = x*6364136223846793005 + 1442695040888963407
			// Links and days of a busy few and a quiet many; Hour numbers
			// the clicks, to tell their order.
			link := int64(x>>40)%int64(max(n/3, 1)) + 1
			if x>>63 == 1 {
				link = int64(x>>50)%5 + 1
			}
			clicks[i] = Click{Link: link, Day: int32(x>>20) % 3, Hour: int64(i)}
		}
		got := g.group(clicks)
		if len(got) != n {
			t.Fatalf("%d clicks: %d grouped", n, len(got))
		}
		b := 0
		for b < groupBits && 1<<(b+1) <= n/4 {
			b++
		}
		seen := make([]bool, n)
		last := map[DayKey]int64{}
		for i, c := range got {
			if seen[c.Hour] || clicks[c.Hour] != c {
				t.Fatalf("%d clicks: grouped click %d is %+v, not one of the clicks once", n, i, c)
			}
			seen[c.Hour] = true
			k := MakeDayKey(c.Link, c.Day)
			if h, ok := last[k]; ok && h > c.Hour {
				t.Fatalf("%d clicks: link %d day %d's click %d after its click %d", n, c.Link, c.Day, c.Hour, h)
			}
			last[k] = c.Hour
			if i > 0 {
				p := got[i-1]
				if dayBucket(MakeDayKey(p.Link, p.Day), b) > dayBucket(k, b) {
					t.Fatalf("%d clicks: buckets out of order at %d", n, i)
				}
			}
		}
		if n >= 200_000 && len(g.ends) != 1<<groupBits+1 {
			t.Fatalf("%d clicks in %d buckets, want %d", n, len(g.ends)-1, 1<<groupBits)
		}
	}
}

// TestFoldWhileCounting: a fold into a partition whose pending clicks
// another worker is counting leaves its clicks pending, past combineAt,
// and Partials counts them: the totals are those of folds never kept
// waiting.
func TestFoldWhileCounting(t *testing.T) {
	segs := genSegments(t, 2, 2000, 250)
	shared := newShared(t)
	c := shared.NewClassifier()
	var s Scratch
	fold := func(totals *Totals) {
		t.Helper()
		for _, data := range segs {
			if _, err := s.MapSegment(data, c, nil); err != nil {
				t.Fatal(err)
			}
			totals.Fold(&s)
		}
	}
	free := NewTotals(1)
	free.combineAt = 1
	fold(free)
	want := viewOf(t, free.Partials(), shared)

	busy := NewTotals(1)
	busy.combineAt = 1
	busy.parts[0].counting.Lock() // another worker's count
	fold(busy)
	if p := &busy.parts[0]; len(p.days) != 0 || len(p.pending) == 0 {
		t.Fatalf("folds while counting: %d days counted, %d clicks pending; want none, all", len(p.days), len(p.pending))
	}
	busy.parts[0].counting.Unlock()
	if got := viewOf(t, busy.Partials(), shared); !reflect.DeepEqual(got, want) {
		t.Fatalf("folded while counting: %d days, never kept waiting: %d", len(got), len(want))
	}
}
