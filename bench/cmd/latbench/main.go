// Command latbench is `make bench-latency`: what a visitor waits for at
// the design load (issue 23), open loop. Cached redirects of -links hot
// codes, with the headers a browser sends (as bench/wrk/redirects.lua),
// at fixed rates (-rates, 600/s, the design's average per proxy, and
// 6,000/s), each request timed from when it was due (bench/internal/
// fixedrate), to:
//
//   - one of the fleet's proxies, directly;
//   - nginx `return 302` with a gzip-buffered log (bench/internal/baseline),
//     directly;
//   - HAProxy, with the shared settings (provisioning/settings/haproxy.json,
//     rendered by bench/internal/balancer as the local fleet and the
//     Ansible role render them), in front of the fleet's 2 proxies, over
//     HTTPS and HTTP;
//   - the same HAProxy configuration in front of 2 nginx backends.
//
// The client keeps its connections (HTTP/1.1 keep-alive, as a browser
// does between the clicks of a page), at most 64 an origin (see conns).
//
// The scenarios run in -rounds interleaved rounds, each pair (the proxy
// and its nginx baseline) back to back, in turns first and second; each
// figure is the median over the rounds, and each p99 ratio the median of
// the rounds' own ratios, so that a round the shared machine slows for
// both sides of a pair does not count against either.
//
// It writes bench/results/<date>-latency.md and the lat-bench section of
// bench/README.md; its output ends with the "bench: NAME VALUE" lines:
// direct_p99_ratio_600 and _6000 (proxy p99 over nginx p99, both
// directly), balancer_p99_ratio_600 and _6000 (HAProxy before the proxies
// over HAProxy before nginx, HTTPS) and balancer_http_p99_ratio_600 and
// _6000 (the same over HTTP), and direct_p99_noise_600 and _6000 (how
// far apart two runs of nginx come out, the resolution of the ratios).
//
//	make bench-latency
//	go run ./bench/cmd/latbench -rounds 1 -duration 2s    (a quick check)
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"shortfleet/bench/internal/balancer"
	"shortfleet/bench/internal/baseline"
	"shortfleet/bench/internal/fixedrate"
	"shortfleet/bench/internal/report"
	"shortfleet/bench/internal/seed"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/settings"
	"shortfleet/provisioning/tlscert"
	"shortfleet/sql/codes"
)

type config struct {
	bin, results, readme string
	links                int64
	rates                []int
	rounds               int
	dur, warm            time.Duration
	keep                 bool
	// hold and probe are for finding out why a figure is what it is: hold
	// starts the fleet and nginx and waits for an interrupt; probe sends
	// the fixed-rate load to one URL (codes from codesFile, over TLS
	// trusting caFile when set) and prints its percentiles.
	hold                     bool
	probe, codesFile, caFile string
	// idle, with probe, is the client's bound on idle connections kept
	// (0: as many as it may open). Go's default, 2, closes most
	// connections after one request at these rates: a handshake each.
	idle int
}

func main() {
	var c config
	var rates string
	flag.StringVar(&c.bin, "bin", "bin", "folder with the primary, proxy and mapreduce binaries")
	flag.Int64Var(&c.links, "links", 1000, "hot links, each fetched once from each proxy before the runs")
	flag.StringVar(&rates, "rates", "600,6000", "requests a second, comma-separated")
	flag.IntVar(&c.rounds, "rounds", 5, "interleaved rounds; each figure is the median over them, each ratio the median of the rounds' ratios")
	flag.DurationVar(&c.dur, "duration", 4*time.Second, "length of each run, its warm-up included")
	flag.DurationVar(&c.warm, "warmup", time.Second, "first part of each run not counted (the client opens its connections)")
	flag.StringVar(&c.results, "results", "bench/results", "folder for the dated report")
	flag.StringVar(&c.readme, "readme", "bench/README.md", "README whose lat-bench section is rewritten")
	flag.BoolVar(&c.keep, "keep", false, "keep the work folder (HAProxy configurations and logs)")
	flag.BoolVar(&c.hold, "hold", false, "start the fleet and nginx, print their addresses and wait for an interrupt (to probe by hand)")
	flag.StringVar(&c.probe, "probe", "", "send the fixed-rate load to this URL only, with -codes and -ca, and print its percentiles")
	flag.StringVar(&c.codesFile, "codes", "", "with -probe: file of codes, one a line")
	flag.StringVar(&c.caFile, "ca", "", "with -probe: PEM file of the CA to trust over HTTPS")
	flag.IntVar(&c.idle, "idle", 0, "with -probe: keep at most this many idle connections, and open as many as needed (Go's default client keeps 2); 0: the bound of the published runs")
	flag.Parse()
	for _, r := range strings.Split(rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "latbench: bad rate %q\n", r)
			os.Exit(2)
		}
		c.rates = append(c.rates, n)
	}
	if c.rounds < 1 || c.dur <= c.warm || c.links < 1 {
		fmt.Fprintln(os.Stderr, "latbench: want -rounds and -links at least 1, -duration above -warmup")
		os.Exit(2)
	}
	run := run
	if c.probe != "" {
		run = probe
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "latbench:", err)
		os.Exit(1)
	}
}

var start = time.Now()

func say(format string, args ...any) {
	fmt.Printf("latbench [%5.0fs]: "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
}

// Scenario names; the headlines and the table use them.
const (
	proxyDirect = "proxy, directly"
	nginxDirect = "nginx `return 302`, directly (baseline)"
	nginxAgain  = "nginx `return 302`, directly, again (noise)"
	lbProxies   = "HAProxy → 2 proxies, HTTPS"
	lbProxiesH  = "HAProxy → 2 proxies, HTTP"
	lbNginx     = "HAProxy → 2 nginx, HTTPS (baseline)"
	lbNginxH    = "HAProxy → 2 nginx, HTTP (baseline)"
	portNginx   = 8080
)

// sample is one measured run: a scenario at a rate.
type sample struct {
	p50, p99, p999 int64 // µs from when each request was due
	n, failed      int
	stats          *balancer.Backend // HAProxy's, for the scenarios through it
}

func run(c config) error {
	ctx := context.Background()
	work, cleanup, err := report.WorkDir("latbench", c.keep)
	if err != nil {
		return err
	}
	defer cleanup()
	if c.keep {
		say("work folder %s", work)
	}
	if !localfleet.HAProxyInstalled() {
		return fmt.Errorf("haproxy is not installed (make bench-latency runs deps.sh, which installs it)")
	}
	binAbs, _ := filepath.Abs(c.bin)
	subnet, err := localfleet.FreeSubnet()
	if err != nil {
		return err
	}
	say("starting a fleet of 2 proxy hosts on %s.x; HAProxy is this driver's, one configuration at a time", subnet)
	f, err := localfleet.Start(ctx, localfleet.Config{
		StateDir: filepath.Join(work, "fleet"), BinDir: binAbs, Proxies: 2, Subnet: subnet, Schedule: "@every 1000h",
		NoBalancer: true,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer f.Stop()
	first, last, err := seed.Links(ctx, f.Primary.DSN(localfleet.Database), c.links)
	if err != nil {
		return err
	}
	if err := f.WaitReplicas(ctx); err != nil {
		return err
	}
	key, _ := hex.DecodeString(f.Secrets.CodeKey)
	codec, err := codes.New(key)
	if err != nil {
		return err
	}
	var hot []string
	for id := first; id <= last; id++ {
		code, err := codec.Encode(id)
		if err != nil {
			return err
		}
		hot = append(hot, code)
	}
	lbHost := subnet + ".4" // the balancer's address, which the proxies trust
	ca, err := tlscert.LoadOrCreateCA(filepath.Join(work, "tls"))
	if err != nil {
		return err
	}
	certFile := filepath.Join(work, "balancer.pem")
	if err := ca.Issue(certFile, []string{lbHost}, 24*time.Hour); err != nil {
		return err
	}
	if err := warm(f.RedirectURLs(), hot); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "codes.txt"), []byte(strings.Join(hot, "\n")+"\n"), 0o644); err != nil {
		return err
	}

	ngDirect, err := baseline.StartNginx(filepath.Join(work, "nginx-direct"), net.JoinHostPort(subnet+".100", strconv.Itoa(portNginx)))
	if err != nil {
		return err
	}
	defer ngDirect.Stop()
	var nginxSrv, proxySrv []settings.Server
	var nginxAddrs []string
	for i := range 2 {
		host := fmt.Sprintf("%s.%d", subnet, 101+i)
		nginxSrv = append(nginxSrv, settings.Server{Name: fmt.Sprintf("nginx-%02d", i+1), Addr: host, Port: portNginx, CheckPort: portNginx})
		nginxAddrs = append(nginxAddrs, net.JoinHostPort(host, strconv.Itoa(portNginx)))
		proxySrv = append(proxySrv, settings.Server{Name: localfleet.ProxyID(i), Addr: f.ProxyHost(i), Port: localfleet.PortRedirect, CheckPort: localfleet.PortAdmin})
	}
	ngBack, err := baseline.StartNginxBackends(filepath.Join(work, "nginx-backends"), nginxAddrs)
	if err != nil {
		return err
	}
	defer ngBack.Stop()

	if c.hold {
		say("holding: proxies %v (admin %v, read token %s), nginx %s and backends %v, balancer address %s (certificate %s, CA %s), codes %s; interrupt to stop",
			f.RedirectURLs(), f.AdminURLs(), f.Secrets.ReadToken, ngDirect.URL, nginxAddrs, lbHost, certFile, filepath.Join(work, "tls"), filepath.Join(work, "codes.txt"))
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		return nil
	}
	lbs := []struct {
		servers []settings.Server
		https   string // scenario name over HTTPS
		http    string // and over HTTP
	}{{proxySrv, lbProxies, lbProxiesH}, {nginxSrv, lbNginx, lbNginxH}}
	tlsConf := &tls.Config{RootCAs: ca.Pool(), ServerName: lbHost}
	got := map[string]map[int][]sample{}
	add := func(name string, rate int, s sample) {
		if got[name] == nil {
			got[name] = map[int][]sample{}
		}
		got[name][rate] = append(got[name][rate], s)
		say("  %-50s %5d/s: p50 %6.2f ms, p99 %7.2f ms, p99.9 %7.2f ms, %d failed", name, rate, ms(s.p50), ms(s.p99), ms(s.p999), s.failed)
	}
	for round := 1; round <= c.rounds; round++ {
		say("round %d of %d", round, c.rounds)
		// Odd rounds measure the proxies first, even rounds nginx.
		swap := round%2 == 0
		for _, rate := range c.rates {
			// nginx twice in a row: how far apart two runs of one
			// server come out is what a ratio can be trusted to.
			pair := []struct{ name, url string }{{proxyDirect, f.RedirectURLs()[0]}, {nginxDirect, ngDirect.URL}, {nginxAgain, ngDirect.URL}}
			if swap {
				slices.Reverse(pair)
			}
			for _, p := range pair {
				add(p.name, rate, measure(p.url, hot, rate, c, nil))
			}
		}
		for j := range lbs {
			i := j
			if swap {
				i = len(lbs) - 1 - j
			}
			l := lbs[i]
			h, err := balancer.Start(ctx, balancer.Setup{
				Dir: filepath.Join(work, fmt.Sprintf("haproxy-%d-%d", round, i)), Host: lbHost, Source: lbHost,
				CertFile: certFile, Servers: l.servers,
			})
			if err != nil {
				return err
			}
			for _, rate := range c.rates {
				for _, t := range []struct {
					name, url string
					tls       *tls.Config
				}{{l.https, h.TLSURL, tlsConf}, {l.http, h.URL, nil}} {
					s := measure(t.url, hot, rate, c, t.tls)
					if st, err := h.BackendStats(ctx); err == nil {
						s.stats = &st
					}
					add(t.name, rate, s)
				}
			}
			h.Stop()
		}
	}
	return write(c, got)
}

// probe is -probe: the fixed-rate load to one URL, -rounds times at each
// rate.
func probe(c config) error {
	data, err := os.ReadFile(c.codesFile)
	if err != nil {
		return err
	}
	hot := strings.Fields(string(data))
	var tlsConf *tls.Config
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tlsConf = &tls.Config{RootCAs: pool}
	}
	for round := 1; round <= c.rounds; round++ {
		for _, rate := range c.rates {
			client := newClient(tlsConf)
			if c.idle > 0 {
				client = churnClient(tlsConf, c.idle)
			}
			s := measureWith(client, c.probe, hot, rate, c)
			say("%s %5d/s: p50 %6.2f ms, p99 %7.2f ms, p99.9 %7.2f ms, %d ok, %d failed", c.probe, rate, ms(s.p50), ms(s.p99), ms(s.p999), s.n, s.failed)
		}
	}
	return nil
}

// warm has every proxy answer every hot link once, so that the runs
// measure cached redirects.
func warm(urls, hot []string) error {
	client := newClient(nil)
	for _, u := range urls {
		for _, code := range hot {
			for try := 1; ; try++ {
				resp, err := client.Get(u + "/" + code)
				if err != nil {
					return fmt.Errorf("warm %s: %w", u, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 3 {
					break
				}
				// A lookup past the proxy's bound is a 503 on a busy
				// machine; asked again, as a client would.
				if resp.StatusCode != http.StatusServiceUnavailable || try == 10 {
					return fmt.Errorf("warm %s/%s: status %d, want a redirect", u, code, resp.StatusCode)
				}
				time.Sleep(time.Duration(try) * 100 * time.Millisecond)
			}
		}
	}
	return nil
}

// conns bounds the client's connections to one origin, as wrk's -c64 in
// the other drivers: they are opened in the warm-up and kept. Without a
// bound, a request that finds every connection busy opens one more, and
// at 6,000/s over HTTPS the handshakes (about 2,300 a second here, the
// client's share included) fall behind the rate, every late request
// opens yet another connection, and the run never recovers: HAProxy's
// `show info` counted 21,514 TLS connections for 24,000 requests, and
// p50 was 14 s, in front of the proxies and in front of nginx alike.
const conns = 64

// newClient is fixedrate's browser-like client with this driver's bound.
func newClient(tlsConf *tls.Config) *http.Client { return fixedrate.NewClient(tlsConf, conns) }

// measure sends rate redirects a second to base for c.dur, over TLS when
// tlsConf is set, and returns the percentiles after the warm-up.
func measure(base string, hot []string, rate int, c config, tlsConf *tls.Config) sample {
	return measureWith(newClient(tlsConf), base, hot, rate, c)
}

// churnClient keeps at most idle connections and opens as many as it
// needs: a client that opens and closes a connection for most requests.
func churnClient(tlsConf *tls.Config, idle int) *http.Client {
	cl := newClient(tlsConf)
	t := cl.Transport.(*http.Transport)
	t.MaxConnsPerHost, t.MaxIdleConnsPerHost = 0, idle
	return cl
}

// measureWith is measure with a client of the caller's.
func measureWith(client *http.Client, base string, hot []string, rate int, c config) sample {
	defer client.CloseIdleConnections()
	r := fixedrate.Run(rate, c.dur, c.warm, func(i int) bool {
		return fixedrate.Redirect(client, base, hot[i%len(hot)], i)
	})
	return sample{p50: r.Percentile(50), p99: r.Percentile(99), p999: r.Percentile(99.9), n: len(r.Lat), failed: r.Failed}
}

func ms(us int64) float64 { return float64(us) / 1000 }

// median is the median over rounds of what pick takes from each sample.
func median(ss []sample, pick func(sample) int64) int64 {
	v := make([]int64, len(ss))
	for i, s := range ss {
		v[i] = pick(s)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func p99(s sample) int64 { return s.p99 }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// roundRatios are the p99 ratios of a and its baseline b round by round
// (the samples of a round are at the same index).
func roundRatios(a, b []sample) []float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		r = append(r, ratio(a[i].p99, b[i].p99))
	}
	return r
}

// spread is the median over rounds of how far each ratio is from 1,
// either way: max(r, 1/r), 1 for equal runs. Zero ratios (a run without
// samples) are left out.
func spread(rr []float64) float64 {
	var far []float64
	for _, r := range rr {
		if r > 0 {
			far = append(far, max(r, 1/r))
		}
	}
	return medianOf(far)
}

// medianOf is the median of v (the mean of the middle two when even).
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Sorted(slices.Values(v))
	m := len(v) / 2
	if len(v)%2 == 0 {
		return (v[m-1] + v[m]) / 2
	}
	return v[m]
}

func write(c config, got map[string]map[int][]sample) error {
	names := []string{proxyDirect, nginxDirect, nginxAgain, lbProxies, lbNginx, lbProxiesH, lbNginxH}
	baseOf := map[string]string{proxyDirect: nginxDirect, nginxAgain: nginxDirect, lbProxies: lbNginx, lbProxiesH: lbNginxH}
	tbl := report.Table{Header: []string{"scenario", "rate", "p50", "p99", "p99.9", "p99 of each round", "p99 ratio: median of the rounds' (each round's; ratio of the medians)", "HAProxy: requests over a reused connection / connections opened, avg rtime/ttime"}}
	var heads []report.Headline
	for _, rate := range c.rates {
		for _, name := range names {
			ss := got[name][rate]
			var rounds []string
			failed := 0
			for _, s := range ss {
				rounds = append(rounds, fmt.Sprintf("%.2f", ms(s.p99)))
				failed += s.failed
			}
			r := ""
			if b, ok := baseOf[name]; ok {
				rr := roundRatios(ss, got[b][rate])
				each := make([]string, len(rr))
				for i, v := range rr {
					each[i] = fmt.Sprintf("%.2f", v)
				}
				r = fmt.Sprintf("**%.2f** of %s (%s; %.2f)", medianOf(rr), strings.TrimSuffix(b, " (baseline)"),
					strings.Join(each, ", "), ratio(median(ss, p99), median(got[b][rate], p99)))
			}
			if failed > 0 {
				r += fmt.Sprintf(" (%d failed)", failed)
			}
			st := ""
			if s := ss[len(ss)-1].stats; s != nil {
				st = fmt.Sprintf("%d / %d, %d/%d ms", s.Reuse, s.Connect, s.Rtime, s.Ttime)
			}
			tbl.Rows = append(tbl.Rows, []string{name, fmt.Sprintf("%d/s", rate),
				fmt.Sprintf("%.2f ms", ms(median(ss, func(s sample) int64 { return s.p50 }))),
				fmt.Sprintf("%.2f ms", ms(median(ss, p99))),
				fmt.Sprintf("%.2f ms", ms(median(ss, func(s sample) int64 { return s.p999 }))),
				strings.Join(rounds, ", "), r, st})
		}
		paired := func(a, b string) float64 { return medianOf(roundRatios(got[a][rate], got[b][rate])) }
		heads = append(heads,
			report.Headline{Name: fmt.Sprintf("direct_p99_ratio_%d", rate), Value: paired(proxyDirect, nginxDirect)},
			report.Headline{Name: fmt.Sprintf("balancer_p99_ratio_%d", rate), Value: paired(lbProxies, lbNginx)},
			report.Headline{Name: fmt.Sprintf("balancer_http_p99_ratio_%d", rate), Value: paired(lbProxiesH, lbNginxH)},
			report.Headline{Name: fmt.Sprintf("direct_p99_noise_%d", rate), Value: spread(roundRatios(got[nginxAgain][rate], got[nginxDirect][rate]))})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, by `make bench-latency` (bench/cmd/latbench).\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), report.Machine())
	b.WriteString(tbl.Markdown())
	fmt.Fprintf(&b, "\nOpen loop: requests sent at a fixed rate whatever the server does, each timed from when it was due (bench/internal/fixedrate), %s a run after a %s warm-up that is not counted; %d interleaved rounds (each pair back to back, in turns first and second), each figure the median over them and each p99 ratio the median of the rounds' ratios (the ratio of the medians in brackets: it pairs samples of different rounds, so a slow moment on the shared machine counts against one side only). "+
		"nginx runs twice in each round, back to back: its second run's ratio to its first is the noise of one server against itself, and `direct_p99_noise_RATE` is the median over the rounds of how far that ratio is from 1 either way (max(r, 1/r)); a ratio of the proxy to nginx closer to 1 than that cannot be told from the machine's noise. ", c.dur-c.warm, c.warm, c.rounds)
	fmt.Fprintf(&b, "Cached redirects of %d hot links (each fetched from each proxy first), with a browser's headers (as bench/wrk/redirects.lua), over keep-alive HTTP/1.1 connections, at most %d an origin, opened as the client needs them (in the warm-up, at these rates). ", c.links, conns)
	b.WriteString("HAProxy runs the shared settings (provisioning/settings/haproxy.json, rendered as the local fleet and the Ansible role render them) in front of the fleet's 2 proxies or of 2 nginx `return 302` backends with the same gzip-buffered log; the proxies log every request in full. ")
	b.WriteString("\n")
	out := b.String()
	fmt.Println()
	fmt.Println(out)
	if err := report.Write(filepath.Join(c.results, report.Today()+"-latency.md"), c.readme, "lat-bench", out); err != nil {
		return err
	}
	report.PrintHeadlines(os.Stdout, heads...)
	return nil
}
