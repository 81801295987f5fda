package sql

import (
	"bytes"
	"testing"
)

func TestVisitors(t *testing.T) {
	var v Visitors
	for i := range 1000 {
		v.Add(uint64(i%300) * 0x9e3779b97f4a7c15)
	}
	if v.Sketch == nil {
		t.Fatal("300 visitors still exact")
	}
	if u := v.Count(); u < 290 || u > 310 {
		t.Fatalf("count %d, want about 300", u)
	}
	var small Visitors
	small.Add(1 << 60)
	small.Add(2 << 60)
	small.Add(2 << 60)
	if small.Count() != 2 || small.Sketch != nil {
		t.Fatalf("small set: %d, sketch %v", small.Count(), small.Sketch != nil)
	}
	for _, set := range []*Visitors{&small, &v} {
		b, err := set.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeVisitors(b)
		if err != nil || back.Count() != set.Count() {
			t.Fatalf("round trip: %v, %d vs %d", err, back.Count(), set.Count())
		}
	}
	eb, _ := small.AppendBinary(nil)
	sb, _ := v.AppendBinary(nil)
	if u, err := UniquesOf([][]byte{eb, sb, eb}); err != nil || u < 290 || u > 312 {
		t.Fatalf("uniques of exact and sketch: %d, %v", u, err)
	}
	if err := small.Merge(&v); err != nil || small.Sketch == nil {
		t.Fatalf("an exact set merged with a sketch must become a sketch: %v", err)
	}
	for _, bad := range [][]byte{nil, {'E', 1, 2}, {'H', 1}, {'Z'}} {
		if _, err := DecodeVisitors(bad); err == nil {
			t.Errorf("DecodeVisitors(%q) accepted garbage", bad)
		}
	}
}

// TestMergeExact: a stored exact set merged in place leaves the same set,
// to the byte, as one decoded and merged, whatever it merges into (empty,
// exact, exact enough to become a sketch on the way, a sketch) and
// though it repeat a hash; anything else it leaves to DecodeVisitors.
func TestMergeExact(t *testing.T) {
	hash := func(i int) uint64 { return uint64(i) * 0x9e3779b97f4a7c15 }
	set := func(from, to int, repeat bool) *Visitors {
		v := &Visitors{}
		for i := from; i < to; i++ {
			v.Add(hash(i))
		}
		if repeat && len(v.Exact) > 1 {
			// Not a set Add makes: as a row written by hand might hold.
			v.Exact = append(v.Exact, v.Exact[0], v.Exact[len(v.Exact)-1])
		}
		return v
	}
	into := map[string]func() *Visitors{
		"empty":       func() *Visitors { return &Visitors{} },
		"exact":       func() *Visitors { return set(1000, 1010, false) },
		"nearly full": func() *Visitors { return set(1000, 1000+ExactMax-3, false) },
		"sketch":      func() *Visitors { return set(1000, 1300, false) },
	}
	for _, stored := range []*Visitors{set(0, 0, false), set(0, 1, false), set(0, 10, false), set(0, 10, true), set(0, ExactMax-2, true), set(0, ExactMax, false)} {
		b, err := stored.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		for name, mk := range into {
			got, want := mk(), mk()
			if !got.MergeExact(b) {
				t.Fatalf("%d hashes into %s: not merged in place", len(stored.Exact), name)
			}
			decoded, err := DecodeVisitors(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := want.Merge(decoded); err != nil {
				t.Fatal(err)
			}
			gb, _ := got.AppendBinary(nil)
			wb, _ := want.AppendBinary(nil)
			if !bytes.Equal(gb, wb) {
				t.Fatalf("%d hashes into %s: %x, want %x", len(stored.Exact), name, gb, wb)
			}
		}
	}
	sketch, _ := set(0, 300, false).AppendBinary(nil)
	tooMany := append([]byte{tagExact}, make([]byte, 8*(ExactMax+1))...)
	for _, b := range [][]byte{nil, {'E', 1, 2}, {'H', 1}, {'Z'}, sketch, tooMany} {
		v := set(0, 3, false)
		if v.MergeExact(b) || len(v.Exact) != 3 {
			t.Errorf("%.8q: merged in place", b)
		}
	}
}
