package main

import "testing"

func TestRoundRatios(t *testing.T) {
	a := []sample{{p99: 309}, {p99: 329}, {p99: 204}}
	b := []sample{{p99: 308}, {p99: 222}, {p99: 206}}
	r := roundRatios(a, b)
	if len(r) != 3 || r[1] < 1.48 || r[1] > 1.49 {
		t.Fatalf("round ratios %v: want each round's own pair", r)
	}
	// The last run's 6,000/s rounds: their ratio of medians is 1.39, the
	// median of their own ratios 1.00.
	if m := medianOf(r); m < 1.0 || m > 1.01 {
		t.Fatalf("median of %v = %v, want 1.00", r, m)
	}
	if m := medianOf([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("median of an even count = %v, want 2.5", m)
	}
	if m := medianOf(nil); m != 0 {
		t.Fatalf("median of nothing = %v", m)
	}
	if s := spread([]float64{0.5, 1.2, 0, 3}); s != 2 {
		t.Fatalf("spread of 0.5, 1.2, 3 (and an empty round) = %v, want 2 (1/0.5)", s)
	}
	if r := roundRatios(a, b[:2]); len(r) != 2 {
		t.Fatalf("unequal rounds paired %d times, want 2", len(r))
	}
}
