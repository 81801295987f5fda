package balancer

import (
	"math"
	"testing"
)

// TestCounters sums two proxies' scrapes, takes the growth over a run and
// the hit ratio over requests: a replica lookup that two requests waited
// on counts once in lookups_total, so the ratio is not over its sum.
func TestCounters(t *testing.T) {
	scrape := func(s302, s404, hit, replica, primary, entries float64) map[string]float64 {
		return map[string]float64{
			`shortfleet_proxy_requests_total{status="302"}`:     s302,
			`shortfleet_proxy_requests_total{status="404"}`:     s404,
			`shortfleet_proxy_lookups_total{outcome="hit"}`:     hit,
			`shortfleet_proxy_lookups_total{outcome="replica"}`: replica,
			`shortfleet_proxy_lookups_total{outcome="primary"}`: primary,
			`shortfleet_proxy_lookups_total{outcome="miss"}`:    0,
			"shortfleet_proxy_cache_entries":                    entries,
			"shortfleet_proxy_cache_bytes":                      entries * 100,
			"shortfleet_proxy_cache_hit_ratio":                  0.5,
			"shortfleet_proxy_replica_batches_total":            1000,
		}
	}
	t0 := Sum([]map[string]float64{scrape(10, 0, 5, 5, 0, 5), scrape(20, 0, 10, 10, 0, 10)})
	t1 := Sum([]map[string]float64{scrape(110, 0, 95, 10, 0, 10), scrape(220, 10, 190, 25, 1, 25)})
	d := t1.Since(t0)
	want := Counters{Requests: 310, Hits: 270, Replica: 20, Primary: 1, CacheEntries: 35, CacheBytes: 3500}
	if d != want {
		t.Fatalf("got %+v, want %+v", d, want)
	}
	if got := d.HitRatio(); math.Abs(got-270.0/310) > 1e-12 {
		t.Errorf("hit ratio %v, want 270 hits of 310 requests (every status)", got)
	}
	if got := (Counters{}).HitRatio(); got != 0 {
		t.Errorf("hit ratio of nothing %v, want 0", got)
	}
}

// TestHeadlines: the names are the same every run, in a fixed order, and
// each ratio is of the right pair.
func TestHeadlines(t *testing.T) {
	f := Figures{Small: 2, Large: 16, Rates: map[Path]float64{
		{Proxies, 2, HTTP}: 900, {Nginx, 2, HTTP}: 1000, {Proxies, 2, HTTPS}: 800, {Nginx, 2, HTTPS}: 1000,
		{Proxies, 16, HTTP}: 720, {Nginx, 16, HTTP}: 900, {Proxies, 16, HTTPS}: 400, {Nginx, 16, HTTPS}: 500,
	}, Before: 200, After: 720,
		RR: Hash{RPS: 500, HitRatio: 0.6}, Consistent: Hash{RPS: 600, HitRatio: 0.9},
		SmallRR: Hash{RPS: 300, HitRatio: 0.3}, SmallConsistent: Hash{RPS: 450, HitRatio: 0.8}}
	want := []struct {
		name  string
		value float64
	}{
		{"lb_vs_nginx_n2_http", 0.9}, {"lb_vs_nginx_n2_https", 0.8}, {"lb_vs_nginx_n16_http", 0.8}, {"lb_vs_nginx_n16_https", 0.8},
		{"n16_vs_n2_http", 0.8}, {"n16_vs_n2_https", 0.5},
		{"after_vs_before_n16_http", 3.6},
		{"rr_hit_ratio", 0.6}, {"consistent_hit_ratio", 0.9}, {"consistent_vs_rr_rps", 1.2},
		{"rr_hit_ratio_small_cache", 0.3}, {"consistent_hit_ratio_small_cache", 0.8}, {"consistent_vs_rr_rps_small_cache", 1.5},
		{"lb_rps_n2_http", 900}, {"lb_rps_n2_https", 800}, {"lb_rps_n16_http", 720}, {"lb_rps_n16_https", 400},
		{"nginx_lb_rps_n2_http", 1000}, {"nginx_lb_rps_n2_https", 1000}, {"nginx_lb_rps_n16_http", 900}, {"nginx_lb_rps_n16_https", 500},
		{"before_rps_n16_http", 200}, {"after_rps_n16_http", 720},
		{"rr_rps", 500}, {"consistent_rps", 600}, {"rr_rps_small_cache", 300}, {"consistent_rps_small_cache", 450},
	}
	got := Headlines(f)
	if len(got) != len(want) {
		t.Fatalf("%d headlines, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Name != w.name || math.Abs(got[i].Value-w.value) > 1e-9 {
			t.Errorf("headline %d: %s %v, want %s %v", i, got[i].Name, got[i].Value, w.name, w.value)
		}
	}
	// Without the small-cache point its headlines are left out, and a
	// rate not measured gives a ratio of 0, not a division by zero.
	f.SmallRR, f.SmallConsistent = Hash{}, Hash{}
	delete(f.Rates, Path{Nginx, 2, HTTP})
	for _, h := range Headlines(f) {
		if h.Name == "rr_hit_ratio_small_cache" {
			t.Errorf("small-cache headline without the point")
		}
		if h.Name == "lb_vs_nginx_n2_http" && h.Value != 0 {
			t.Errorf("ratio over an unmeasured rate: %v", h.Value)
		}
	}
}
