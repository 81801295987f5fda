//go:build linux

package redirect

import (
	"fmt"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"shortfleet/proxy/internal/geo"
	"shortfleet/proxy/internal/geo/geotest"
)

// BenchmarkRulesVsPlain measures a cached redirect of a link with three
// rules (device, language, country), none matching, so all are evaluated,
// against a plain link's, side by side in one run: 180 stretches of
// 10,000 redirects of each, interleaved, timed by the CPU time of the
// thread (see nsPer). The country database has 65,536
// ranges (a real one has a few hundred thousand: one more step of the
// binary search per doubling). It ends with a "bench: rules_vs_plain
// RATIO" line, the rules link's time per redirect over the plain one's,
// with the access log on, as a proxy runs (and a rules_vs_plain_unlogged
// line for the handler alone).
// Run it alone: go test -run '^$' -bench BenchmarkRulesVsPlain -benchtime 1x ./proxy/internal/redirect/
func BenchmarkRulesVsPlain(b *testing.B) {
	e := setupB(b)
	nets := map[string]string{}
	ccs := []string{"DE", "JP", "BR", "US", "GB", "IN", "CN", "FR"}
	for i := range 1 << 16 {
		nets[fmt.Sprintf("%d.%d.%d.0/24", 11+i>>16, (i>>8)&255, i&255)] = ccs[i%len(ccs)]
	}
	nets["203.0.113.0/24"] = "BR" // the client's
	raw, err := geotest.Build(geotest.Whois, nets)
	if err != nil {
		b.Fatal(err)
	}
	if e.srv.cfg.Countries, err = geo.OpenBytes(raw); err != nil {
		b.Fatal(err)
	}
	e.ids["rules"] = e.featureLink("https://example.com/a?b=c", nil, false, `[
		{"kind":"device","value":"ios","target":"https://example.com/ios"},
		{"kind":"language","value":"fr","target":"https://example.com/fr"},
		{"kind":"country","value":"FR","target":"https://example.com/fr"}]`)
	// A link with an expiry only: what the options path costs without
	// rules.
	far := time.Now().Add(365 * 24 * time.Hour)
	e.ids["expiry"] = e.featureLink("https://example.com/a?b=c", &far, false, "")
	e.waitReplay()
	// One request per side, reused: the cached path, as the alloc test.
	ctxFor := func(link string) *fasthttp.RequestCtx {
		var req fasthttp.Request
		req.Header.SetMethod("GET")
		req.SetRequestURI("/" + e.code(e.ids[link]))
		req.Header.Set("Host", "sho.rt")
		req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		req.Header.Set("Accept-Language", "de-CH,de;q=0.9,en;q=0.8")
		req.Header.Set("Referer", "https://www.google.com/")
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(203, 0, 113, 4), Port: 40000}, nil)
		e.srv.Handle(ctx)
		if ctx.Response.StatusCode() != 302 || string(ctx.Response.Header.Peek("Location")) != "https://example.com/a?b=c" {
			b.Fatalf("%s: %d %s", link, ctx.Response.StatusCode(), ctx.Response.Header.Peek("Location"))
		}
		return ctx
	}
	ctxs := map[string]*fasthttp.RequestCtx{"302": ctxFor("302"), "rules": ctxFor("rules"), "expiry": ctxFor("expiry")}
	// nsPer times n cached redirects of link. (testing.Benchmark cannot
	// run inside a benchmark: it waits for the lock this one holds.)
	// The time is the CPU time of the thread running the loop
	// (RUSAGE_THREAD), not the wall clock: other processes on a shared
	// machine do not count, nor does the log writer's compression, which
	// runs on its own goroutines and is the same for both sides. Appending
	// the record to the writer is counted.
	// Short stretches of each side, many times over, interleaved: the log
	// writer's background work and a shared machine's ups and downs fall on
	// both sides alike, and the totals compare.
	const n, rounds = 10_000, 180
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	nsPer := func(link string) float64 {
		ctx := ctxs[link]
		start := threadCPU(b)
		for range n {
			ctx.Response.Reset()
			e.srv.Handle(ctx)
		}
		return float64(threadCPU(b)-start) / n
	}
	mean := func(s []float64) float64 {
		sum := 0.0
		for _, v := range s {
			sum += v
		}
		return sum / float64(len(s))
	}
	b.ResetTimer()
	// Logged is what a proxy runs; unlogged shows the handler alone,
	// where the rules' share is largest.
	for _, mode := range []string{"logged", "unlogged"} {
		e.srv.log = e.logw
		if mode == "unlogged" {
			e.srv.log = nil
		}
		nsPer("302")
		nsPer("rules") // warm both
		var plain, rules, expiry []float64
		for i := range b.N * rounds {
			// Each side goes first in every other round: the log's
			// background work a round leaves behind falls on both alike.
			if i%2 == 0 {
				plain = append(plain, nsPer("302"))
				rules = append(rules, nsPer("rules"))
			} else {
				rules = append(rules, nsPer("rules"))
				plain = append(plain, nsPer("302"))
			}
			expiry = append(expiry, nsPer("expiry"))
		}
		p, r := mean(plain), mean(rules)
		b.ReportMetric(p, mode+"-plain-ns/redirect")
		b.ReportMetric(r, mode+"-rules-ns/redirect")
		fmt.Printf("%s: plain %.1f ns/redirect, rules %.1f ns/redirect, expiry only %.1f ns/redirect (CPU time of %d interleaved stretches of %d each)\n",
			mode, p, r, mean(expiry), len(plain), n)
		name := "rules_vs_plain"
		if mode == "unlogged" {
			name += "_unlogged"
		}
		fmt.Printf("bench: %s %.3f\n", name, r/p)
	}
}

// threadCPU is the CPU time the calling thread has used, in ns.
func threadCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
