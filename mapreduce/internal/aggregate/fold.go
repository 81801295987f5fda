package aggregate

import (
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
// clicks of the segment it mapped last, and the same clicks grouped by
// partition for Fold. One goroutine uses it at a time.
type Scratch struct {
	clicks []Click
	byPart []Click
	part   []int32 // each click's partition
	ends   []int   // where each partition's clicks end in byPart
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
	parts []totalsPart
}

type totalsPart struct {
	mu   sync.Mutex
	days map[DayKey]*Day
	slab daySlab
	// Keeps two partitions' locks off one cache line.
	_ [64]byte
}

// NewTotals returns empty totals of n partitions.
func NewTotals(n int) *Totals {
	t := &Totals{parts: make([]totalsPart, n)}
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
// for only when every partition left is busy.
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
			tp.mu.Unlock()
		}
		if len(rest) == len(todo) {
			// Every partition left is busy: wait for the first.
			p := rest[0]
			t.parts[p].mu.Lock()
			t.foldPart(s, int(p))
			t.parts[p].mu.Unlock()
			rest = rest[1:]
		}
		todo = rest
	}
}

// foldPart adds the scratch's clicks of partition p; p's lock is held.
func (t *Totals) foldPart(s *Scratch, p int) {
	from := 0
	if p > 0 {
		from = s.ends[p-1]
	}
	tp := &t.parts[p]
	combine(tp.days, &tp.slab, s.byPart[from:s.ends[p]])
}

// Partials are the totals of each partition, as reduce would have given
// them. No Fold may run at the same time or after.
func (t *Totals) Partials() []*Partial {
	out := make([]*Partial, len(t.parts))
	for i := range t.parts {
		out[i] = &Partial{Days: t.parts[i].days}
	}
	return out
}
