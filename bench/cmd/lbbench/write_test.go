package main

import (
	"testing"

	"shortfleet/bench/internal/balancer"
	"shortfleet/bench/internal/wrk"
)

// TestFigures: each hashing run lands in its own field (mode and cache
// size), path and before/after rates are medians of their rounds.
func TestFigures(t *testing.T) {
	rate := func(rps int64) wrk.Result { return wrk.Result{Requests: rps, DurationUS: 1e6} }
	hit := func(r float64) balancer.Counters { return balancer.Counters{Requests: 1000, Hits: 1000 * r} }
	b := &bench{c: config{small: 2, large: 16}}
	o := &outcome{
		path: map[balancer.Path]*measured{
			{Target: balancer.Proxies, N: 16, Scheme: balancer.HTTP}: {runs: []wrk.Result{rate(900), rate(100), rate(500)}},
		},
		before: measured{runs: []wrk.Result{rate(200), rate(300)}},
		after:  measured{runs: []wrk.Result{rate(700)}},
		hash: []hashPoint{
			{mode: "roundrobin", res: rate(10), counters: hit(0.5)},
			{mode: "uri-consistent", res: rate(20), counters: hit(0.75)},
			{mode: "roundrobin", cacheBytes: 1 << 20, res: rate(30), counters: hit(0.25)},
			{mode: "uri-consistent", cacheBytes: 1 << 20, res: rate(40), counters: hit(0.625)},
		},
	}
	f := b.figures(o)
	if got := f.Rates[balancer.Path{Target: balancer.Proxies, N: 16, Scheme: balancer.HTTP}]; got != 500 {
		t.Errorf("path rate %v, want the median 500", got)
	}
	if f.Before != 300 || f.After != 700 {
		t.Errorf("before %v, after %v; want 300 (the upper median of two) and 700", f.Before, f.After)
	}
	want := map[string]balancer.Hash{"RR": {RPS: 10, HitRatio: 0.5}, "Consistent": {RPS: 20, HitRatio: 0.75},
		"SmallRR": {RPS: 30, HitRatio: 0.25}, "SmallConsistent": {RPS: 40, HitRatio: 0.625}}
	got := map[string]balancer.Hash{"RR": f.RR, "Consistent": f.Consistent, "SmallRR": f.SmallRR, "SmallConsistent": f.SmallConsistent}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %+v, want %+v", k, got[k], w)
		}
	}
}

func TestCacheName(t *testing.T) {
	for cb, want := range map[int64]string{0: "the proxy's default", 1 << 20: "1 MiB", 16 << 20: "16 MiB", 1000: "1000 bytes"} {
		if got := cacheName(cb); got != want {
			t.Errorf("cacheName(%d) = %q, want %q", cb, got, want)
		}
	}
}
