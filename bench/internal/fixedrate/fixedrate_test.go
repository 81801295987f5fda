package fixedrate

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestOpenLoop: the first request does not return until the last one has
// been sent. A generator that waited for a request before sending the
// next (closed loop, coordinated omission) would never send the last one
// and the test would time out.
func TestOpenLoop(t *testing.T) {
	const rate, n = 1000, 200
	last := make(chan struct{})
	var calls atomic.Int64
	r := Run(rate, n*time.Second/rate, 0, func(i int) bool {
		calls.Add(1)
		switch i {
		case 0:
			<-last
		case n - 1:
			close(last)
		}
		return true
	})
	if got := calls.Load(); got != n {
		t.Fatalf("got %d requests, want %d", got, n)
	}
	if len(r.Lat) != n || r.Failed != 0 {
		t.Fatalf("got %d latencies and %d failed, want %d and 0", len(r.Lat), r.Failed, n)
	}
	// The first request was due first and returned after the last one
	// was sent: its time, from when it was due, is the run's longest.
	if r.Lat[n-1] < int64((n-1)*time.Second/rate/time.Microsecond) {
		t.Fatalf("longest latency %d µs, want at least the run's span, %d µs", r.Lat[n-1], (n-1)*1000)
	}
}

// TestWarmAndFailed: requests due in the warm-up are sent and not
// counted; the others are counted as latencies or as failed.
func TestWarmAndFailed(t *testing.T) {
	const rate = 1000
	var calls atomic.Int64
	r := Run(rate, 100*time.Millisecond, 50*time.Millisecond, func(i int) bool {
		calls.Add(1)
		return i%10 != 0
	})
	if got := calls.Load(); got != 100 {
		t.Fatalf("got %d requests, want 100", got)
	}
	if len(r.Lat) != 45 || r.Failed != 5 {
		t.Fatalf("got %d latencies and %d failed, want 45 and 5 (requests 50 to 99, one in ten failing)", len(r.Lat), r.Failed)
	}
	for i := 1; i < len(r.Lat); i++ {
		if r.Lat[i] < r.Lat[i-1] {
			t.Fatalf("latencies not sorted at %d: %v", i, r.Lat)
		}
	}
}

func TestPercentile(t *testing.T) {
	lat := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		p    float64
		want int64
	}{{0, 1}, {50, 5}, {99, 9}, {100, 10}} {
		if got := Percentile(lat, c.p); got != c.want {
			t.Fatalf("Percentile(%v) = %d, want %d", c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Fatalf("Percentile of none = %d, want 0", got)
	}
}
