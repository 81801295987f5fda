package aggregate

import (
	"runtime"
	"slices"
	"sync"

	"shortfleet/logfmt"
	"shortfleet/mapreduce/internal/dims"
)

// A run's stages without per-segment results: each map worker maps a
// whole segment into its Scratch (MapSegment), the caller checks the
// segment (its record count against the manifest, say), and only then
// folds the scratch's clicks into the run's per-partition Totals (Fold).
// A segment that fails anywhere before Fold, partway through its batches
// included, adds nothing: its clicks only ever sat in the scratch.
//
// This replaces a partial per segment, shuffled by link and merged again
// in reduce (reference_test.go keeps that path for the tests): that merge was about a fifth of the
// aggregation's CPU (aggregate-cpu-visitors.pprof in
// bench/results/profiles-23), a link-day's counts, dimension values and
// visitor sets built once per segment and then added once more.

// Scratch is one map worker's buffers, kept from segment to segment: the
// clicks of the segment it mapped last, the same clicks grouped by
// partition for Fold, and the buffers of a partition's combine. One
// goroutine uses it at a time.
type Scratch struct {
	clicks []Click
	byPart []Click
	part   []int32 // each click's partition
	ends   []int   // where each partition's clicks end in byPart
	group  dayGrouper
	bd     batchDims
	ok     bool // clicks are a whole segment's, mapped without error
}

// Clicks are the clicks MapSegment mapped last (none if it failed). The
// caller must not modify them.
func (s *Scratch) Clicks() []Click { return s.clicks }

// MapSegment maps a whole segment, its bytes in memory, into s, keeping
// only the clicks keep accepts (all, if keep is nil), and returns the
// number of records it read. It adds nothing to any totals. If it fails,
// s holds no clicks and Fold of it adds nothing.
func (s *Scratch) MapSegment(data []byte, c *dims.Classifier, keep func(Click) bool) (int64, error) {
	s.clicks, s.ok = s.clicks[:0], false
	rd, err := logfmt.NewColumnsReader(data, mapColumns...)
	if err != nil {
		return 0, err
	}
	defer rd.Release()
	var records int64
	for rd.Next() {
		b := rd.Batch()
		n := b.Len()
		records += int64(n)
		s.bd.set(b, c)
		from := len(s.clicks)
		s.clicks = mapRows(b, c, &s.bd, s.clicks, 0, n)
		if keep != nil {
			kept := s.clicks[:from]
			for _, cl := range s.clicks[from:] {
				if keep(cl) {
					kept = append(kept, cl)
				}
			}
			s.clicks = kept
		}
	}
	if err := rd.Err(); err != nil {
		s.clicks = s.clicks[:0]
		return records, err
	}
	s.ok = true
	return records, nil
}

// Totals are a run's clicks so far, by partition of the links (PartitionOf):
// what checked segments are folded into. Map workers fold into them
// concurrently; each partition has a lock of its own.
type Totals struct {
	parts     []totalsPart
	combineAt int // combineAt, but for tests
}

type totalsPart struct {
	mu sync.Mutex // pending and spare
	// pending are clicks of checked segments not yet counted into days:
	// they are counted combineAt at a time, grouped by day (dayGrouper).
	pending []Click
	spare   []Click // the buffer the last count handed back
	// counting is held while pending clicks are counted into days: it
	// guards days and slab. A fold into the partition meanwhile only
	// takes mu, to append, and never waits for a count to end.
	counting sync.Mutex
	days     map[DayKey]*Day
	slab     daySlab
	// Keeps two partitions' locks off one cache line.
	_ [64]byte
}

// NewTotals returns empty totals of n partitions.
func NewTotals(n int) *Totals {
	t := &Totals{parts: make([]totalsPart, n), combineAt: combineAt}
	for i := range t.parts {
		t.parts[i].days = map[DayKey]*Day{}
	}
	return t
}

// Fold adds the clicks of the segment s mapped last to t, once: s is
// emptied. Nothing is added if its MapSegment failed.
//
// The clicks are grouped by partition first (a counting sort that keeps
// their order), so each partition's lock is taken once per segment; a
// partition another worker is folding into is left for later, and waited
// for only when every partition left is busy. A partition takes them into
// its pending clicks, and counts those into its days once it has
// combineAt (or when Partials asks): they are the segment's from then on,
// whether or not they are counted yet.
func (t *Totals) Fold(s *Scratch) {
	if !s.ok || len(s.clicks) == 0 {
		s.clicks, s.ok = s.clicks[:0], false
		return
	}
	n := len(t.parts)
	s.part = s.part[:0]
	s.ends = append(s.ends[:0], make([]int, n+1)...)
	for i := range s.clicks {
		p := int32(PartitionOf(s.clicks[i].Link, n))
		s.part = append(s.part, p)
		s.ends[p+1]++
	}
	for p := range n {
		s.ends[p+1] += s.ends[p]
	}
	// ends[p] is now where partition p starts; it becomes where it ends.
	if cap(s.byPart) < len(s.clicks) {
		s.byPart = make([]Click, len(s.clicks))
	}
	s.byPart = s.byPart[:len(s.clicks)]
	for i, p := range s.part {
		s.byPart[s.ends[p]] = s.clicks[i]
		s.ends[p]++
	}
	s.clicks, s.ok = s.clicks[:0], false
	var left [64]int32
	todo := left[:0]
	for p := range n {
		if p == 0 && s.ends[0] > 0 || p > 0 && s.ends[p] > s.ends[p-1] {
			todo = append(todo, int32(p))
		}
	}
	for len(todo) > 0 {
		rest := todo[:0]
		for _, p := range todo {
			tp := &t.parts[p]
			if !tp.mu.TryLock() {
				rest = append(rest, p)
				continue
			}
			t.foldPart(s, int(p))
		}
		if len(rest) == len(todo) {
			// Every partition left is busy: wait for the first.
			p := rest[0]
			t.parts[p].mu.Lock()
			t.foldPart(s, int(p))
			rest = rest[1:]
		}
		todo = rest
	}
}

// combineAt is how many pending clicks a partition counts into its days
// at once: about 1.5 MB of them. In the order they were logged, each
// click went to a day, and its value table, that the clicks since had
// pushed out of the cache: a run's busy days and their tables are tens of
// megabytes, and combine waited on memory for the days map, the Day and a
// cache line of its table per dimension, over half of the aggregation's
// CPU (agg4-base-cpu.pprof in bench/results/profiles-23). Grouped by day,
// a day's clicks come one after the other: one map lookup for the run of
// them, its lines in the cache after the first. The more clicks grouped
// at once, the longer a busy day's runs: grouping each segment's clicks
// alone took a sixth off Fold's CPU (agg4-segment-group-cpu.pprof), these
// a third (agg4-grouped-cpu.pprof). Four times as many, here a whole
// run's, cost no less CPU in all (agg4-combineat17-serial-partials-cpu.pprof)
// and would hold four times the memory.
const combineAt = 1 << 15

// foldPart adds the scratch's clicks of partition p to its pending
// clicks; p's mu is held, and foldPart releases it. Once combineAt are
// pending, and no other worker is counting the partition's, it takes them
// and counts them, mu released: the partition's next folds do not wait
// for it (they waited 194 ms in 9 runs of BenchmarkLocalSegments'
// aggregate, 2.5 ms since: agg4-grouped-mutex.pprof, agg4-split-mutex.pprof).
func (t *Totals) foldPart(s *Scratch, p int) {
	from := 0
	if p > 0 {
		from = s.ends[p-1]
	}
	tp := &t.parts[p]
	tp.pending = append(tp.pending, s.byPart[from:s.ends[p]]...)
	if len(tp.pending) < t.combineAt || !tp.counting.TryLock() {
		tp.mu.Unlock()
		return
	}
	clicks := tp.pending
	tp.pending, tp.spare = tp.spare[:0], nil
	tp.mu.Unlock()
	tp.count(clicks, &s.group)
	tp.mu.Lock()
	tp.spare = clicks[:0]
	tp.mu.Unlock()
	tp.counting.Unlock()
}

// count counts clicks into the partition's days, grouped by g; counting
// is held.
func (tp *totalsPart) count(clicks []Click, g *dayGrouper) {
	combine(tp.days, &tp.slab, g.group(clicks))
}

// dayGrouper groups clicks by link and day, roughly: by bucket of their
// DayKey's hash, in one counting sort that keeps their order, so a day's
// clicks come together (mostly alone in their bucket) and in the order
// they came. Grouping is all it is for: what a day counts does not depend
// on the order of other days' clicks around its own. Its buffers are kept
// from one group to the next.
type dayGrouper struct {
	out    []Click
	bucket []int32 // each click's bucket
	ends   []int32 // where each bucket's clicks end in out
}

// groupBits bounds the buckets to 2^groupBits: their counts, 4 bytes
// each, then stay in the cache.
const groupBits = 14

// group returns the clicks grouped; the result is valid until the next
// call.
func (g *dayGrouper) group(clicks []Click) []Click {
	// About four clicks a bucket: few enough that most buckets hold one
	// day's clicks, or one day's and a few of other quiet days'.
	b := 0
	for b < groupBits && 1<<(b+1) <= len(clicks)/4 {
		b++
	}
	g.bucket = g.bucket[:0]
	g.ends = append(g.ends[:0], make([]int32, 1<<b+1)...)
	for i := range clicks {
		k := dayBucket(MakeDayKey(clicks[i].Link, clicks[i].Day), b)
		g.bucket = append(g.bucket, k)
		g.ends[k+1]++
	}
	for k := range 1 << b {
		g.ends[k+1] += g.ends[k]
	}
	// ends[k] is now where bucket k starts; it becomes where it ends.
	g.out = slices.Grow(g.out[:0], len(clicks))[:len(clicks)]
	for i, k := range g.bucket {
		g.out[g.ends[k]] = clicks[i]
		g.ends[k]++
	}
	return g.out
}

// dayBucket is a day's bucket of 2^b. The hash is another multiple of the
// key than PartitionOf's, so a partition's links spread over every bucket.
func dayBucket(k DayKey, b int) int32 {
	return int32(uint64(k) * 0xbf58476d1ce4e5b9 >> 32 >> (32 - b))
}

// Partials are the totals of each partition, as reduce would have given
// them, every pending click counted. No Fold may run at the same time or
// after.
//
// The partitions' last pending clicks are counted on as many goroutines
// as there are CPUs: a run's last combines otherwise kept one CPU busy
// while the others waited.
func (t *Totals) Partials() []*Partial {
	next := make(chan *totalsPart, len(t.parts))
	for i := range t.parts {
		if len(t.parts[i].pending) > 0 {
			next <- &t.parts[i]
		}
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(next)) {
		wg.Go(func() {
			var g dayGrouper
			for tp := range next {
				tp.count(tp.pending, &g)
			}
		})
	}
	wg.Wait()
	out := make([]*Partial, len(t.parts))
	for i := range t.parts {
		t.parts[i].pending, t.parts[i].spare = nil, nil
		out[i] = &Partial{Days: t.parts[i].days}
	}
	return out
}
