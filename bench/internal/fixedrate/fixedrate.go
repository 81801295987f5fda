// Package fixedrate is the benchmarks' open-loop load: requests sent on a
// fixed schedule whatever the server does, each timed from when it was
// due. A closed-loop client (wrk, or a loop that sends the next request
// when the last one returns) slows down with the server and never sends
// the requests a stall should have delayed, so the stall hardly shows in
// its percentiles (coordinated omission). Here a stall counts against
// every request that fell due during it.
package fixedrate

import (
	"sort"
	"sync"
	"time"
)

// Result is one run's latencies, in microseconds from when each request
// was due, sorted, of the requests that succeeded; Failed counts the rest.
type Result struct {
	Lat    []int64
	Failed int
}

// Run sends rate requests a second for d, the i-th due at start + i/rate,
// each in a goroutine of its own whether or not the ones before it have
// returned, and times each from when it was due. do sends request i and
// reports whether it succeeded. Requests due in the first warm of d are
// sent but not counted: a client's first connections are opened then.
func Run(rate int, d, warm time.Duration, do func(i int) bool) Result {
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	r := Result{Lat: make([]int64, 0, n)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Go(func() {
			ok := do(i)
			took := time.Since(due)
			if due.Sub(start) < warm {
				return
			}
			mu.Lock()
			if ok {
				r.Lat = append(r.Lat, took.Microseconds())
			} else {
				r.Failed++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(r.Lat, func(i, j int) bool { return r.Lat[i] < r.Lat[j] })
	return r
}

// Percentile is the p-th percentile (0 to 100) of the latencies, in
// microseconds; 0 for no requests.
func (r Result) Percentile(p float64) int64 { return Percentile(r.Lat, p) }

// Percentile is the p-th percentile (0 to 100) of sorted; 0 when empty.
func Percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*p/100)]
}
