package aggregate

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	sfsql "shortfleet/sql"
)

// storedAfterCount is a set's stored form once it has been counted, as
// the dashboard reads it, an exact set sorted: Count compacts a sparse sketch (or turns it
// dense), so two sets holding the same keys have the same bytes.
func storedAfterCount(t *testing.T, v *sfsql.Visitors) (uint64, []byte) {
	t.Helper()
	n := v.Count()
	// An exact set is stored in the order it holds: sfsql.Visitors.Add's
	// order of insertion, the day's sorted.
	sorted := sfsql.Visitors{Exact: slices.Sorted(slices.Values(v.Exact)), Sketch: v.Sketch}
	b, err := sorted.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	// And what is stored without counting first reads back the same.
	back, err := sfsql.DecodeVisitors(b)
	if err != nil {
		t.Fatal(err)
	}
	if m := back.Count(); m != n {
		t.Fatalf("stored set counts %d, %d before", m, n)
	}
	return n, b
}

// TestSparseKeysMatchSketch: a day's visitors, added click by click and
// folded in batches (sorted sparse keys, built into a sketch once), give
// the same count and, once counted, the same stored bytes as the hashes
// added one by one to sfsql.Visitors (the library's own inserts), for
// sets from exact through sparse to dense, with repeated visitors, with
// hashes whose sparse key carries a rank, and with more visitors added
// after the set was asked for, or merged into a stored set. Without
// sparseKey matching the library's encoding, or with the dense switch
// at another size, the bytes or counts differ.
func TestSparseKeysMatchSketch(t *testing.T) {
	hashes := func(n int, repeat bool) []uint64 {
		r := rand.New(rand.NewPCG(3, 4)) // n of them, a prefix of n+1
		var hs []uint64
		for range n {
			h := r.Uint64()
			if r.IntN(40) == 0 {
				// Bits 39 to 49 zero: the key carries the rank.
				h &^= (1<<11 - 1) << 39
			}
			hs = append(hs, h)
			if repeat && r.IntN(3) == 0 {
				hs = append(hs, hs[r.IntN(len(hs))])
			}
		}
		return hs
	}
	// The most distinct hashes of one stream whose sparse sketch is not
	// yet dense: the sets either side of the switch.
	edge, s, stream := 0, sparseKeys{}, hashes(10000, false)
	for !s.dense() {
		s.add([]uint64{stream[edge]})
		edge++
	}
	sizes := []int{1, 64, 65, 200, 700, 3000, edge - 1, edge, 9000, 40000}
	for _, n := range sizes {
		for _, repeat := range []bool{false, true} {
			hs := hashes(n, repeat)
			var d Day
			var want sfsql.Visitors
			for _, h := range hs {
				d.addVisitor(h)
				want.Add(h)
			}
			wn, wb := storedAfterCount(t, &want)
			gn, gb := storedAfterCount(t, d.Visitors())
			if gn != wn || !bytes.Equal(gb, wb) {
				t.Fatalf("%d hashes (repeats %v): counted %d, %d bytes; one by one %d, %d bytes", len(hs), repeat, gn, len(gb), wn, len(wb))
			}
			// More after the set was asked for, then merged into a
			// stored set as a run's commit does.
			more := []uint64{^hs[0], hs[0], hs[len(hs)/2] + 1}
			for _, h := range more {
				d.addVisitor(h)
				want.Add(h)
			}
			stored, _ := sfsql.DecodeVisitors(wb)
			wm, _ := sfsql.DecodeVisitors(wb)
			if err := d.Visitors().Merge(stored); err != nil {
				t.Fatal(err)
			}
			if err := wm.Merge(&want); err != nil {
				t.Fatal(err)
			}
			wn, wb = storedAfterCount(t, wm)
			gn, gb = storedAfterCount(t, d.Visitors())
			if gn != wn || !bytes.Equal(gb, wb) {
				t.Fatalf("%d hashes (repeats %v), more, merged: counted %d, %d bytes; one by one %d, %d bytes", len(hs), repeat, gn, len(gb), wn, len(wb))
			}
		}
	}
}
