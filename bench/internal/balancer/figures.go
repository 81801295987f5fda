package balancer

import (
	"fmt"
	"strings"

	"shortfleet/bench/internal/metrics"
	"shortfleet/bench/internal/report"
)

// Counters are the proxies' figures the benchmark reads from /metrics,
// summed over every proxy of a set.
type Counters struct {
	Requests float64 // requests answered, every status
	Hits     float64 // lookups answered from the cache
	// Replica counts replica lookups: one a lookup that ran, however
	// many requests for the same link waited on it.
	Replica float64
	Primary float64 // lookups asked of the primary
	// Gauges, at the scrape: links cached and their estimated bytes.
	CacheEntries, CacheBytes float64
}

// Series the proxy exports (proxy/internal/metrics).
const (
	seriesRequests = "shortfleet_proxy_requests_total{"
	seriesHits     = `shortfleet_proxy_lookups_total{outcome="hit"}`
	seriesReplica  = metrics.ReplicaLookups
	seriesPrimary  = `shortfleet_proxy_lookups_total{outcome="primary"}`
	seriesEntries  = "shortfleet_proxy_cache_entries"
	seriesBytes    = "shortfleet_proxy_cache_bytes"
)

// Sum adds up one scrape of each proxy (series to value, as
// bench/internal/metrics.Scrape returns them).
func Sum(scrapes []map[string]float64) Counters {
	var c Counters
	for _, m := range scrapes {
		for k, v := range m {
			if strings.HasPrefix(k, seriesRequests) {
				c.Requests += v
			}
		}
		c.Hits += m[seriesHits]
		c.Replica += m[seriesReplica]
		c.Primary += m[seriesPrimary]
		c.CacheEntries += m[seriesEntries]
		c.CacheBytes += m[seriesBytes]
	}
	return c
}

// Since returns the counters' growth from earlier to c; the gauges are
// c's.
func (c Counters) Since(earlier Counters) Counters {
	return Counters{
		Requests: c.Requests - earlier.Requests, Hits: c.Hits - earlier.Hits,
		Replica: c.Replica - earlier.Replica, Primary: c.Primary - earlier.Primary,
		CacheEntries: c.CacheEntries, CacheBytes: c.CacheBytes,
	}
}

// HitRatio is the share of requests answered from the cache. Every
// request of the benchmark's load looks one link up, and lookups_total
// counts a replica lookup once however many requests waited on it, so
// the ratio is hits over requests, not over the sum of lookups_total.
func (c Counters) HitRatio() float64 {
	if c.Requests <= 0 {
		return 0
	}
	return c.Hits / c.Requests
}

// Path keys a rate of the path scenarios: the backends behind HAProxy
// ("proxies" or "nginx"), how many, and the clients' scheme.
type Path struct {
	Target string
	N      int
	Scheme string // "http" or "https"
}

// Targets and schemes of the path scenarios.
const (
	Proxies = "proxies"
	Nginx   = "nginx"
	HTTP    = "http"
	HTTPS   = "https"
)

// Hash is one mode of the round-robin against consistent hashing figure.
type Hash struct {
	RPS      float64
	HitRatio float64
}

// Figures are the rates and ratios a run's headlines are made of.
type Figures struct {
	Small, Large int              // the two backend counts (2 and 16)
	Rates        map[Path]float64 // requests/s through HAProxy
	// Before and After are requests/s at Large backends over HTTP with
	// the configuration issue 19 replaced and with today's.
	Before, After float64
	// RR and Consistent are the hashing figures at the proxies' default
	// cache; SmallRR and SmallConsistent at a smaller one, zero when not
	// measured.
	RR, Consistent, SmallRR, SmallConsistent Hash
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Headlines are the run's "bench: NAME VALUE" figures, the same names
// every run: through HAProxy, the proxies' rate over nginx's
// (lb_vs_nginx_n16_https), the large backend count's over the small one's
// (n16_vs_n2_http), after over before (after_vs_before_n16_http), the
// hashing figures, then the raw rates.
func Headlines(f Figures) []report.Headline {
	var hs []report.Headline
	add := func(name string, v float64) { hs = append(hs, report.Headline{Name: name, Value: v}) }
	schemes := []string{HTTP, HTTPS}
	for _, n := range []int{f.Small, f.Large} {
		for _, s := range schemes {
			add(fmt.Sprintf("lb_vs_nginx_n%d_%s", n, s), ratio(f.Rates[Path{Proxies, n, s}], f.Rates[Path{Nginx, n, s}]))
		}
	}
	for _, s := range schemes {
		add(fmt.Sprintf("n%d_vs_n%d_%s", f.Large, f.Small, s), ratio(f.Rates[Path{Proxies, f.Large, s}], f.Rates[Path{Proxies, f.Small, s}]))
	}
	add(fmt.Sprintf("after_vs_before_n%d_http", f.Large), ratio(f.After, f.Before))
	hash := func(suffix string, rr, consistent Hash) {
		add("rr_hit_ratio"+suffix, rr.HitRatio)
		add("consistent_hit_ratio"+suffix, consistent.HitRatio)
		add("consistent_vs_rr_rps"+suffix, ratio(consistent.RPS, rr.RPS))
	}
	hash("", f.RR, f.Consistent)
	if f.SmallRR.RPS > 0 {
		hash("_small_cache", f.SmallRR, f.SmallConsistent)
	}
	for _, t := range []struct{ target, prefix string }{{Proxies, "lb_rps"}, {Nginx, "nginx_lb_rps"}} {
		for _, n := range []int{f.Small, f.Large} {
			for _, s := range schemes {
				add(fmt.Sprintf("%s_n%d_%s", t.prefix, n, s), f.Rates[Path{t.target, n, s}])
			}
		}
	}
	add(fmt.Sprintf("before_rps_n%d_http", f.Large), f.Before)
	add(fmt.Sprintf("after_rps_n%d_http", f.Large), f.After)
	add("rr_rps", f.RR.RPS)
	add("consistent_rps", f.Consistent.RPS)
	if f.SmallRR.RPS > 0 {
		add("rr_rps_small_cache", f.SmallRR.RPS)
		add("consistent_rps_small_cache", f.SmallConsistent.RPS)
	}
	return hs
}
