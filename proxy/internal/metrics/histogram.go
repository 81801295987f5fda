package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RedirectBuckets are the upper bounds of the redirect latency histogram
// (shortfleet_proxy_redirect_duration_seconds): a cached redirect takes a
// few microseconds of handler time, a replica lookup about a millisecond,
// an ask of the primary up to its timeout.
var RedirectBuckets = []time.Duration{
	5 * time.Microsecond, 10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

// Histogram counts durations in fixed buckets with two atomic adds per
// observation and nothing else: no lock, no allocation, no clock read of
// its own, so the redirect path can afford it on every request. The
// collector turns it into a Prometheus histogram when scraped.
type Histogram struct {
	bounds []int64 // upper bounds in nanoseconds, ascending; read only
	// cells[0] is the sum of the observations in nanoseconds, cells[1+i]
	// the count of bucket i (cells[len(cells)-1]: over every bound). The
	// sum sits beside the first buckets, where nearly every redirect
	// lands, so that both adds touch one cache line.
	cells []atomic.Uint64
}

// NewHistogram returns an empty histogram with these upper bounds, which
// must be ascending.
func NewHistogram(bounds []time.Duration) *Histogram {
	h := &Histogram{bounds: make([]int64, len(bounds)), cells: make([]atomic.Uint64, len(bounds)+2)}
	for i, b := range bounds {
		h.bounds[i] = int64(b)
	}
	return h
}

// Observe counts one duration of ns nanoseconds, in the first bucket whose
// bound is at least ns (Prometheus's le); a negative one counts as 0.
func (h *Histogram) Observe(ns int64) {
	ns = max(ns, 0)
	i := 0
	for i < len(h.bounds) && ns > h.bounds[i] {
		i++
	}
	h.cells[1+i].Add(1)
	h.cells[0].Add(uint64(ns))
}

// Snapshot returns the histogram as Prometheus wants it: the count, the
// sum in seconds and the cumulative count at each bound, in seconds. A
// scrape racing observations may see a sum a few observations apart from
// the counts; the counts always agree with each other.
func (h *Histogram) Snapshot() (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(h.bounds))
	for i, b := range h.bounds {
		count += h.cells[1+i].Load()
		buckets[float64(b)/1e9] = count
	}
	count += h.cells[len(h.cells)-1].Load()
	return count, float64(h.cells[0].Load()) / 1e9, buckets
}

// metric is the histogram as a constant Prometheus metric of d.
func (h *Histogram) metric(d *prometheus.Desc) prometheus.Metric {
	count, sum, buckets := h.Snapshot()
	return prometheus.MustNewConstHistogram(d, count, sum, buckets)
}
