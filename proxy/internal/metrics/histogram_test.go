package metrics

import (
	"testing"
	"time"
)

// TestHistogramBuckets: an observation lands in the first bucket whose
// bound is at least it (Prometheus's le: a bound is in its own bucket),
// past every bound in +Inf; the counts are cumulative and the sum exact.
// A negative duration (a clock stepped back) counts as 0.
func TestHistogramBuckets(t *testing.T) {
	h := NewHistogram([]time.Duration{10 * time.Microsecond, time.Millisecond, time.Second})
	for _, d := range []time.Duration{
		-time.Second,                     // 0: first bucket
		0,                                // first
		10 * time.Microsecond,            // on the bound: first
		10*time.Microsecond + 1,          // second
		time.Millisecond,                 // second
		2 * time.Millisecond,             // third
		time.Second + 1, 3 * time.Second, // +Inf
	} {
		h.Observe(int64(d))
	}
	count, sum, buckets := h.Snapshot()
	want := map[float64]uint64{1e-5: 3, 1e-3: 5, 1: 6}
	if count != 8 || len(buckets) != len(want) {
		t.Fatalf("count %d, buckets %v; want 8, %v", count, buckets, want)
	}
	for le, n := range want {
		if buckets[le] != n {
			t.Errorf("le=%g: %d, want %d (all: %v)", le, buckets[le], n, buckets)
		}
	}
	wantSum := (20*time.Microsecond + 1 + time.Millisecond + 2*time.Millisecond + time.Second + 1 + 3*time.Second).Seconds()
	if sum != wantSum {
		t.Errorf("sum %v s, want %v s", sum, wantSum)
	}
}

// TestRedirectBucketsAscend: Observe's scan needs ascending bounds.
func TestRedirectBucketsAscend(t *testing.T) {
	for i := 1; i < len(RedirectBuckets); i++ {
		if RedirectBuckets[i] <= RedirectBuckets[i-1] {
			t.Fatalf("bucket %d (%v) not above bucket %d (%v)", i, RedirectBuckets[i], i-1, RedirectBuckets[i-1])
		}
	}
}

// BenchmarkHistogramObserve is what timing a redirect adds to it, beside
// the clock read the access log already makes: one observation, alone
// and from every core at once into the same buckets (the cached path's
// case: nearly every redirect lands in the first buckets).
func BenchmarkHistogramObserve(b *testing.B) {
	h := NewHistogram(RedirectBuckets)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			h.Observe(int64(3000 + i&1023))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.Observe(3000)
			}
		})
	})
}
