package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"shortfleet/bench/internal/balancer"
	"shortfleet/bench/internal/report"
	"shortfleet/bench/internal/wrk"
	"shortfleet/provisioning/settings"
)

// loadAvg is /proc/loadavg's first three fields, read when the run starts:
// the machine may be shared.
var loadAvg = func() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}()

func ms(us int64) string { return fmt.Sprintf("%.2f ms", float64(us)/1000) }

// figures gathers the medians the headlines and tables are made of.
func (b *bench) figures(o *outcome) balancer.Figures {
	f := balancer.Figures{Small: b.c.small, Large: b.c.large, Rates: map[balancer.Path]float64{},
		Before: o.before.median().RPS(), After: o.after.median().RPS()}
	for k, m := range o.path {
		f.Rates[k] = m.median().RPS()
	}
	for _, h := range o.hash {
		v := balancer.Hash{RPS: h.res.RPS(), HitRatio: h.counters.HitRatio()}
		switch {
		case h.cacheBytes == 0 && h.mode == "roundrobin":
			f.RR = v
		case h.cacheBytes == 0:
			f.Consistent = v
		case h.mode == "roundrobin":
			f.SmallRR = v
		default:
			f.SmallConsistent = v
		}
	}
	return f
}

func (b *bench) write(o *outcome) error {
	c := b.c
	f := b.figures(o)
	h := settings.LoadHAProxy()
	hitCell := func(m *measured) string {
		if m.counters.Requests == 0 {
			return ""
		}
		return fmt.Sprintf("%.3f", m.counters.HitRatio())
	}
	row := func(name string, n int, scheme string, m *measured, hits, ratio string) []string {
		r := m.median()
		return []string{name, strconv.Itoa(n), scheme, fmt.Sprintf("%.0f", r.RPS()), ms(r.LatP50US), ms(r.LatP99US),
			strconv.FormatInt(m.errors(), 10), hits, ratio}
	}
	tbl := report.Table{Header: []string{"scenario", "N", "scheme", "requests/s", "p50", "p99", "errors", "cache hits", "ratio"}}
	for _, n := range []int{c.small, c.large} {
		for _, s := range []string{balancer.HTTP, balancer.HTTPS} {
			ng, px := o.path[balancer.Path{Target: balancer.Nginx, N: n, Scheme: s}], o.path[balancer.Path{Target: balancer.Proxies, N: n, Scheme: s}]
			tbl.Rows = append(tbl.Rows, row("HAProxy in front of nginx `return 302` (baseline)", n, s, ng, "", "1.00"))
			ratio := fmt.Sprintf("**%.2f** of nginx behind HAProxy (aim ≥ 0.9)", px.median().RPS()/ng.median().RPS())
			if n == c.large {
				small := o.path[balancer.Path{Target: balancer.Proxies, N: c.small, Scheme: s}]
				ratio += fmt.Sprintf("; **%.2f** of N=%d (aim ≥ 0.8)", px.median().RPS()/small.median().RPS(), c.small)
			}
			tbl.Rows = append(tbl.Rows, row("HAProxy in front of the fleet's proxies", n, s, px, hitCell(px), ratio))
		}
	}
	tbl.Rows = append(tbl.Rows,
		row("before issue 19: send-proxy-v2, http-reuse safe; proxies with -proxy-protocol", c.large, balancer.HTTP, &o.before, hitCell(&o.before), "1.00"),
		row(fmt.Sprintf("after: today's configuration (http-reuse %s, X-Forwarded-For); the same proxies", h.HTTPReuse), c.large, balancer.HTTP, &o.after, hitCell(&o.after),
			fmt.Sprintf("**%.2f** of before", f.After/f.Before)))

	hashTbl := report.Table{Header: []string{"balance", "proxy cache", "requests/s", "p50", "p99", "errors", "cache hit ratio", "replica lookups/s", "links cached, all proxies", "cache bytes, all proxies", "ratio"}}
	var rr wrk.Result
	for _, p := range o.hash {
		ratio := "1.00"
		if p.mode == "roundrobin" {
			rr = p.res
		} else {
			ratio = fmt.Sprintf("**%.2f** of round-robin's rate", p.res.RPS()/rr.RPS())
		}
		mode := "round-robin"
		if p.mode != "roundrobin" {
			mode = "consistent hashing (`balance uri`, `hash-type consistent`)"
		}
		hashTbl.Rows = append(hashTbl.Rows, []string{mode, cacheName(p.cacheBytes), fmt.Sprintf("%.0f", p.res.RPS()), ms(p.res.LatP50US), ms(p.res.LatP99US),
			strconv.FormatInt(p.res.Errors(), 10), fmt.Sprintf("**%.3f**", p.counters.HitRatio()),
			fmt.Sprintf("%.0f", p.counters.Replica/c.hashDur.Seconds()), fmt.Sprintf("%.0f", p.counters.CacheEntries), fmt.Sprintf("%.1f MiB", p.counters.CacheBytes/(1<<20)), ratio})
	}

	date := report.Today()
	resultsFile := date + "-lb.md"
	wrkCmd := b.opts("URL", c.dur, "CODES=hot.txt").Command()
	var s strings.Builder
	fmt.Fprintf(&s, "Measured %s on %s, by `make bench-lb` (bench/cmd/lbbench), in %s; load average %s at the start (the machine may be shared: compare ratios within a run). Each path and before/after figure is the median of %d interleaved runs; ratios are of medians.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), report.Machine(), time.Since(start).Round(time.Second), loadAvg, c.rounds)
	s.WriteString(tbl.Markdown())
	fmt.Fprintf(&s, "\n**Round-robin against consistent hashing**: %d proxies started fresh for each row (caches empty; one lookup worker each, as they share one replica), Zipf(%g) over all %d links, %s of warm-up then %s measured; the hit ratio and replica lookups are over the measured interval, summed over the proxies; links and bytes cached (the proxies' own estimate) at its end.\n\n",
		c.large, c.zipf, c.links, c.hashWarm, c.hashDur)
	s.WriteString(hashTbl.Markdown())
	bt := "`"
	fmt.Fprintf(&s, "\n**Setup**\n\n")
	fmt.Fprintf(&s, "- Load: %s%s%s, the URL per scenario (HTTP or HTTPS on the balancer's address; wrk does not verify the certificate), after a %s warm-up of the same; codes Zipf(%g) over the first %d links, each fetched once from every proxy, straight, before the first run, so that the redirects are cached (the \"cache hits\" column: requests answered from the cache, over the measured runs). The hashing rows draw from a file of all %d codes instead.\n",
		bt, wrkCmd, bt, c.warm, c.zipf, c.hot, c.links)
	fmt.Fprintf(&s, "- HAProxy: one process of the driver's a configuration, rendered by %ssettings.HAProxy.RenderHAProxy%s from provisioning/settings/haproxy.json (balance %s, http-reuse %s, maxconn fitted to the descriptor limit), binding the fleet balancer's address (<subnet>.4, ports 8080 and 8443, an ECDSA P-256 certificate from a CA of the run's) and connecting from it, which the proxies trust; the configurations in front of the proxies and in front of nginx differ only in their server lines.\n",
		bt, bt, h.Balance, h.HTTPReuse)
	s.WriteString("- nginx: one process (a worker a core) with a server block a backend, each on an address of its own (<subnet>.101 and up), answering 302 with the same gzip-buffered combined log as the proxy baseline, and /readyz 200 unlogged for HAProxy's checks.\n")
	fmt.Fprintf(&s, "- Before: today's rendered configuration with send-proxy-v2 added to %sdefault-server%s, http-reuse safe, and no X-Forwarded-For, X-Forwarded-Proto or X-Client-Port lines, as HAProxy ran before issue 19; before and after both go to a second set of %d proxies on the same hosts, started with %s-proxy-protocol%s, which take a PROXY header and plain connections alike from the balancer.\n",
		bt, bt, c.large, bt, bt)
	fmt.Fprintf(&s, "- The fleets: for the path and before/after rows, %d proxy hosts, each with its own streaming replica of the primary, %d links seeded with COPY in %.1f s. For the hashing rows, a fleet of one proxy host, %d links seeded in %.1f s, whose one replica all %d proxies read: the links table is %.2f GB with its indexes, and %d replicas would need %d copies of it in this one machine's page cache (on bare metal each proxy host has its own memory for its own).\n",
		c.large, c.hot, o.seededHot.Seconds(), c.links, o.seededAll.Seconds(), c.large, float64(o.tableBytes)/1e9, c.large, c.large)
	s.WriteString("- Everything (HAProxy, the proxies, Postgres, nginx, wrk with one thread) shares the machine's cores: the figures compare the balancer's cost per request in front of each backend, not the throughput of separate hosts.\n")
	body := s.String()
	fmt.Println()
	fmt.Println(body)
	if err := report.Write(filepath.Join(c.results, resultsFile), c.readme, "lb-bench", body); err != nil {
		return err
	}
	if c.top != "" {
		if err := os.WriteFile(c.top, []byte(b.top(o, f, resultsFile)), 0o644); err != nil {
			return err
		}
	}
	report.PrintHeadlines(os.Stdout, balancer.Headlines(f)...)
	return nil
}

// top is the short table README.md shows, with its aims.
func (b *bench) top(o *outcome, f balancer.Figures, resultsFile string) string {
	c := b.c
	t := report.Table{Header: []string{"figure", "value", "aim"}}
	for _, n := range []int{c.small, c.large} {
		for _, s := range []string{balancer.HTTP, balancer.HTTPS} {
			p, ng := f.Rates[balancer.Path{Target: balancer.Proxies, N: n, Scheme: s}], f.Rates[balancer.Path{Target: balancer.Nginx, N: n, Scheme: s}]
			t.Rows = append(t.Rows, []string{fmt.Sprintf("proxies / nginx `return 302`, both behind HAProxy, N=%d, %s", n, strings.ToUpper(s)),
				fmt.Sprintf("**%.2f** (%.0f / %.0f requests/s)", p/ng, p, ng), "≥ 0.9"})
		}
	}
	for _, s := range []string{balancer.HTTP, balancer.HTTPS} {
		l, sm := f.Rates[balancer.Path{Target: balancer.Proxies, N: c.large, Scheme: s}], f.Rates[balancer.Path{Target: balancer.Proxies, N: c.small, Scheme: s}]
		t.Rows = append(t.Rows, []string{fmt.Sprintf("through HAProxy, N=%d / N=%d, %s", c.large, c.small, strings.ToUpper(s)),
			fmt.Sprintf("**%.2f**", l/sm), "≥ 0.8"})
	}
	t.Rows = append(t.Rows, []string{fmt.Sprintf("today's balancer / the one issue 19 replaced (send-proxy-v2, http-reuse safe), N=%d, HTTP", c.large),
		fmt.Sprintf("**%.2f** (%.0f / %.0f requests/s)", f.After/f.Before, f.After, f.Before), ""})
	hash := func(label string, rr, ch balancer.Hash) {
		t.Rows = append(t.Rows, []string{fmt.Sprintf("consistent hashing / round-robin, %d fresh proxies, Zipf over %d links, %s", c.large, c.links, label),
			fmt.Sprintf("**%.2f** of the rate; cache hit ratio %.3f against %.3f", ratio(ch.RPS, rr.RPS), ch.HitRatio, rr.HitRatio), ""})
	}
	hash("the proxy's default cache", f.RR, f.Consistent)
	if f.SmallRR.RPS > 0 {
		hash(cacheName(c.smallCache)+" caches", f.SmallRR, f.SmallConsistent)
	}
	return fmt.Sprintf("%s\nThe full table, p99s and setup: [bench/results/%s](bench/results/%s); what is measured: [bench/README.md](bench/README.md#the-balancer-path-make-bench-lb).\n",
		t.Markdown(), resultsFile, resultsFile)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
