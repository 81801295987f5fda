package sql

import "testing"

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
