// Command lbbench is `make bench-lb` (and part of `make bench`): the real
// path of a short link, through HAProxy, beside its baselines in one run
// on one machine (issue 19):
//
//  1. Path: the same HAProxy configuration, rendered from
//     provisioning/settings/haproxy.json with only the servers differing,
//     in front of N of the fleet's proxies and in front of N nginx
//     `return 302` servers (the balancer's baseline), N = 2 and -proxies,
//     over HTTP and HTTPS, cached redirects Zipf-skewed over -hot links.
//  2. Before and after: at -proxies backends over HTTP, the configuration
//     issue 19 replaced (send-proxy-v2 on every server, http-reuse safe)
//     beside today's, both in front of the same proxies, started with
//     -proxy-protocol so that they take either.
//  3. Round-robin against consistent hashing (balance uri, hash-type
//     consistent): -proxies fresh proxies for each mode, their caches
//     empty, Zipf over all -links links; rate and cache hit ratio over
//     the measured interval, at the proxies' default cache and, with
//     -small-cache-bytes, at a smaller one. These run on a second fleet,
//     of one proxy host, whose one replica every proxy reads.
//
// HAProxy is a process of this driver's, one per configuration, on the
// address the fleet's balancer would have (<subnet>.4, which the proxies
// trust), with a certificate from a CA of the run's; the fleets run
// without their own. Only one HAProxy runs at a time.
//
// It writes bench/results/<date>-lb.md, the lb-bench section of
// bench/README.md, and with -top a short table that make puts into
// README.md with provisioning/readme-section.sh. Its output ends with the
// "bench: NAME VALUE" lines of balancer.Headlines.
//
//	make bench-lb                                        (the published run)
//	go run ./bench/cmd/lbbench -duration 2s -warmup 1s -rounds 1 -links 100000 \
//	  -hash-duration 3s -hash-warmup 2s -proxies 4        (a quick check)
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"shortfleet/bench/internal/balancer"
	"shortfleet/bench/internal/baseline"
	"shortfleet/bench/internal/metrics"
	"shortfleet/bench/internal/report"
	"shortfleet/bench/internal/seed"
	"shortfleet/bench/internal/wrk"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/settings"
	"shortfleet/provisioning/tlscert"
	"shortfleet/sql/codes"
)

// config is the run's settings, from flags.
type config struct {
	bin, results, readme, top string
	links, hot                int64
	zipf                      float64
	conns, rounds             int
	small, large              int
	dur, warm                 time.Duration
	hashDur, hashWarm         time.Duration
	smallCache                int64
	keep                      bool
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bin", "folder with the primary, proxy and mapreduce binaries")
	flag.Int64Var(&c.links, "links", 10_000_000, "links seeded; the hashing scenarios draw from all of them")
	flag.Int64Var(&c.hot, "hot", 10_000, "links the path and before/after scenarios draw from (the first ones); each proxy fetches every one once first")
	flag.Float64Var(&c.zipf, "zipf", 1.1, "Zipf exponent of every scenario's codes (above 1)")
	flag.IntVar(&c.conns, "connections", 64, "wrk connections")
	flag.IntVar(&c.rounds, "rounds", 3, "interleaved rounds of the path and before/after scenarios; the median is reported")
	flag.IntVar(&c.large, "proxies", 16, "backends of the large point, the before/after and the hashing scenarios (the small point has 2)")
	flag.DurationVar(&c.dur, "duration", 10*time.Second, "length of each measured path and before/after run")
	flag.DurationVar(&c.warm, "warmup", 3*time.Second, "length of the warm-up before each of them")
	flag.DurationVar(&c.hashDur, "hash-duration", 30*time.Second, "length of each hashing mode's measured run")
	flag.DurationVar(&c.hashWarm, "hash-warmup", 10*time.Second, "length of each hashing mode's warm-up, from empty caches")
	flag.Int64Var(&c.smallCache, "small-cache-bytes", 1<<20, "the proxies' -cache-bytes for the hashing scenarios' second point (1 MiB: a few thousand links); 0 skips it")
	flag.StringVar(&c.results, "results", "bench/results", "folder for the dated report")
	flag.StringVar(&c.readme, "readme", "bench/README.md", "README whose lb-bench section is rewritten")
	flag.StringVar(&c.top, "top", "", "file for the short table make puts into README.md; none when empty")
	flag.BoolVar(&c.keep, "keep", false, "keep the work folder (HAProxy configurations and logs)")
	flag.Parse()
	c.small = 2
	if c.large <= c.small || c.zipf <= 1 || c.rounds < 1 || c.hot < 1 || c.links < 1 {
		fmt.Fprintln(os.Stderr, "lbbench: want -proxies above 2, -zipf above 1, -rounds, -hot and -links at least 1")
		os.Exit(2)
	}
	c.hot = min(c.hot, c.links)
	t := time.Now()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "lbbench:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "lbbench: done in %s\n", time.Since(t).Round(time.Second))
}

var start = time.Now()

func say(format string, args ...any) {
	fmt.Printf("lbbench [%5.0fs]: "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
}

// Ports of the driver's own proxy sets, beside the fleet's 8080 and 9090
// on the same hosts.
const (
	portPPRedirect   = 8081 // -proxy-protocol, before and after
	portPPAdmin      = 9091
	portHashRedirect = 8082 // fresh for each hashing mode
	portHashAdmin    = 9092
	portNginx        = 8080 // on <subnet>.101 and up
)

const script = "bench/wrk/redirects.lua" // run from the repository's root, as make does

// bench is one run's settings, files and the fleet of the scenarios
// under way.
type bench struct {
	c        config
	ctx      context.Context
	work     string
	ca       *tlscert.CA // issues each fleet's balancer certificate
	f        *localfleet.Fleet
	subnet   string
	lbHost   string // the fleet's balancer address, which its proxies trust
	certFile string
	hotCodes string // the codes of the path fleet's links
	allCodes string // the codes of the hashing fleet's links
}

func run(c config) error {
	ctx := context.Background()
	work, cleanup, err := report.WorkDir("lbbench", c.keep)
	if err != nil {
		return err
	}
	defer cleanup()
	if c.keep {
		say("work folder %s", work)
	}
	if !localfleet.HAProxyInstalled() {
		return fmt.Errorf("haproxy is not installed (make bench-lb runs deps.sh, which installs it)")
	}
	ca, err := tlscert.LoadOrCreateCA(filepath.Join(work, "tls"))
	if err != nil {
		return err
	}
	b := &bench{c: c, ctx: ctx, work: work, ca: ca}
	defer b.stopFleet()
	var o outcome

	// Scenarios 1 and 2 need -proxies hosts, each with its replica, and
	// only the links they draw from.
	if o.seededHot, err = b.startFleet("fleet-path", c.large, c.hot, &b.hotCodes); err != nil {
		return err
	}
	if err := b.path(&o); err != nil {
		return err
	}
	if err := b.beforeAfter(&o); err != nil {
		return err
	}
	b.stopFleet()

	// Scenario 3 needs every link: one replica holds them for all the
	// proxies. Sixteen replicas would each keep a copy of the table (the
	// size is in the report), more than this machine's page cache holds,
	// and their replay of the seeding would share its two cores; on bare
	// metal each proxy host has its own memory for its own replica.
	if o.seededAll, err = b.startFleet("fleet-hash", 1, c.links, &b.allCodes); err != nil {
		return err
	}
	if o.tableBytes, err = tableBytes(ctx, b.f.Primary.DSN(localfleet.Database)); err != nil {
		return err
	}
	if err := b.hashing(&o); err != nil {
		return err
	}
	b.stopFleet()
	return b.write(&o)
}

// startFleet brings up a local fleet of proxies hosts, each with its own
// streaming replica, without a balancer of its own (the driver runs
// HAProxy on the balancer's address, one configuration at a time), seeds
// n links, writes their codes to a file named in *codesFile, and issues
// the balancer's certificate for its address.
func (b *bench) startFleet(name string, proxies int, n int64, codesFile *string) (time.Duration, error) {
	binAbs, _ := filepath.Abs(b.c.bin)
	subnet, err := localfleet.FreeSubnet()
	if err != nil {
		return 0, err
	}
	say("starting a fleet of %d proxy hosts on %s.x, without its own HAProxy", proxies, subnet)
	f, err := localfleet.Start(b.ctx, localfleet.Config{
		StateDir: filepath.Join(b.work, name), BinDir: binAbs, Proxies: proxies, Subnet: subnet, Schedule: "@every 1000h",
		NoBalancer: true,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return 0, err
	}
	b.f, b.subnet, b.lbHost = f, subnet, subnet+".4"
	say("seeding %d links with COPY", n)
	t := time.Now()
	first, last, err := seed.Links(b.ctx, f.Primary.DSN(localfleet.Database), n)
	if err != nil {
		return 0, err
	}
	seeded := time.Since(t)
	if err := f.WaitReplicas(b.ctx); err != nil {
		return 0, err
	}
	say("seeded in %s; every replica has replayed it %s later", seeded.Round(time.Millisecond), (time.Since(t) - seeded).Round(time.Millisecond))
	key, _ := hex.DecodeString(f.Secrets.CodeKey)
	codec, err := codes.New(key)
	if err != nil {
		return 0, err
	}
	*codesFile = filepath.Join(b.work, name+"-codes.txt")
	if err := seed.WriteCodes(*codesFile, codec, first, last); err != nil {
		return 0, err
	}
	b.certFile = filepath.Join(b.work, name+"-balancer.pem")
	return seeded, b.ca.Issue(b.certFile, []string{b.lbHost}, 7*24*time.Hour)
}

func (b *bench) stopFleet() {
	if b.f != nil {
		say("stopping the fleet")
		b.f.Stop()
		b.f = nil
	}
}

// tableBytes is the links table's size on the primary, indexes included.
func tableBytes(ctx context.Context, dsn string) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, "SELECT pg_total_relation_size('links')").Scan(&n)
	return n, err
}

// measured is one scenario's runs and, for proxies, their counters'
// growth over the measured runs.
type measured struct {
	runs     []wrk.Result
	counters balancer.Counters
}

// median is the run of median rate.
func (m measured) median() wrk.Result {
	s := append([]wrk.Result(nil), m.runs...)
	sort.Slice(s, func(i, j int) bool { return s[i].RPS() < s[j].RPS() })
	return s[len(s)/2]
}

func (m measured) errors() int64 {
	var n int64
	for _, r := range m.runs {
		n += r.Errors()
	}
	return n
}

// hashPoint is one hashing mode at one cache size.
type hashPoint struct {
	mode       string // roundrobin or uri-consistent
	cacheBytes int64  // 0: the proxy's default
	res        wrk.Result
	counters   balancer.Counters
}

// outcome is everything the run measured.
type outcome struct {
	path                 map[balancer.Path]*measured
	before, after        measured
	hash                 []hashPoint
	seededHot, seededAll time.Duration
	tableBytes           int64 // the links table, every link seeded
}

func (b *bench) opts(url string, d time.Duration, env ...string) wrk.Options {
	return wrk.Options{URL: url, Script: script, Threads: 1, Connections: b.c.conns, Duration: d,
		Env: append([]string{fmt.Sprintf("ZIPF_S=%g", b.c.zipf), "CODES_FIXED=1"}, env...)}
}

// measure warms url up, then runs the measured load, reading the
// counters of the proxies at admins (if any) around the measured run.
func (b *bench) measure(name, url, codesFile string, warm, d time.Duration, admins []string) (wrk.Result, balancer.Counters, error) {
	if _, err := wrk.Run(b.ctx, b.opts(url, warm, "CODES="+codesFile)); err != nil {
		return wrk.Result{}, balancer.Counters{}, fmt.Errorf("%s, warm-up: %w", name, err)
	}
	c0, err := b.scrape(admins)
	if err != nil {
		return wrk.Result{}, balancer.Counters{}, err
	}
	say("wrk: %s, %d connections, %s", name, b.c.conns, d)
	r, err := wrk.Run(b.ctx, b.opts(url, d, "CODES="+codesFile))
	if err != nil {
		return wrk.Result{}, balancer.Counters{}, fmt.Errorf("%s: %w", name, err)
	}
	// Errors on a tenth of the requests is a broken setup, not a figure.
	if r.Errors() > r.Requests/10 {
		return r, balancer.Counters{}, fmt.Errorf("%s: %d errors in %d requests (%+v)", name, r.Errors(), r.Requests, r)
	}
	c1, err := b.scrape(admins)
	if err != nil {
		return wrk.Result{}, balancer.Counters{}, err
	}
	return r, c1.Since(c0), nil
}

// scrape sums the metrics of the proxies at admins, read with the fleet's
// read token (the one the fleet page reads /metrics with).
func (b *bench) scrape(admins []string) (balancer.Counters, error) {
	var all []map[string]float64
	for _, a := range admins {
		m, err := metrics.Scrape(a, b.f.Secrets.ReadToken)
		if err != nil {
			return balancer.Counters{}, err
		}
		all = append(all, m)
	}
	return balancer.Sum(all), nil
}

// haproxy starts HAProxy on the balancer's address in front of servers.
func (b *bench) haproxy(name string, servers []settings.Server, balance string, before bool) (*balancer.HAProxy, error) {
	return balancer.Start(b.ctx, balancer.Setup{
		Dir: filepath.Join(b.work, "haproxy-"+name), Host: b.lbHost, Source: b.lbHost, CertFile: b.certFile,
		Balance: balance, Servers: servers, Before: before,
	})
}

// fleetServers are the first n of the fleet's own proxies.
func (b *bench) fleetServers(n int) ([]settings.Server, []string) {
	var s []settings.Server
	for i := range n {
		s = append(s, settings.Server{Name: localfleet.ProxyID(i), Addr: b.f.ProxyHost(i), Port: localfleet.PortRedirect, CheckPort: localfleet.PortAdmin})
	}
	return s, b.f.AdminURLs()[:n]
}

// nginxServers are n nginx backends, each on an address of its own as
// each proxy is.
func (b *bench) nginxServers(n int) ([]settings.Server, []string) {
	var s []settings.Server
	var addrs []string
	for i := range n {
		host := fmt.Sprintf("%s.%d", b.subnet, 101+i)
		s = append(s, settings.Server{Name: fmt.Sprintf("nginx-%02d", i+1), Addr: host, Port: portNginx, CheckPort: portNginx})
		addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(portNginx)))
	}
	return s, addrs
}

// warmDirect has every proxy at urls answer every hot link once,
// straight, not through HAProxy, so that the path and before/after
// scenarios measure cached redirects from their first request: a warm-up
// through the balancer with Zipf-skewed codes leaves the tail uncached on
// each of 16 proxies for minutes.
func (b *bench) warmDirect(urls []string) error {
	data, err := os.ReadFile(b.hotCodes)
	if err != nil {
		return err
	}
	hot := strings.Fields(string(data))
	say("every hot link fetched once from each of %d proxies (%d requests)", len(urls), len(hot)*len(urls))
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: 4},
		Timeout:       10 * time.Second,
	}
	g, ctx := errgroup.WithContext(b.ctx)
	var retries atomic.Int64
	const workers = 4 // a proxy
	for _, u := range urls {
		for w := range workers {
			g.Go(func() error {
				for i := w; i < len(hot); i += workers {
					// A proxy answers 503 when a lookup outlasts its
					// bound (500 ms), which a machine this busy can make
					// happen; it is asked again, as a client would.
					for try := 1; ; try++ {
						req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u+"/"+hot[i], nil)
						resp, err := client.Do(req)
						if err != nil {
							return fmt.Errorf("warm %s: %w", u, err)
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode/100 == 3 {
							break
						}
						if resp.StatusCode != http.StatusServiceUnavailable || try == 10 {
							return fmt.Errorf("warm %s/%s: status %d, want a redirect", u, hot[i], resp.StatusCode)
						}
						retries.Add(1)
						time.Sleep(time.Duration(try) * 100 * time.Millisecond)
					}
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if n := retries.Load(); n > 0 {
		say("%d answers of 503 asked again", n)
	}
	return nil
}

// path runs scenario 1: proxies and nginx behind the same HAProxy, at
// both backend counts, over both schemes, in interleaved rounds.
func (b *bench) path(o *outcome) error {
	o.path = map[balancer.Path]*measured{}
	if err := b.warmDirect(b.f.RedirectURLs()); err != nil {
		return err
	}
	for round := 1; round <= b.c.rounds; round++ {
		say("path, round %d of %d", round, b.c.rounds)
		for _, n := range []int{b.c.small, b.c.large} {
			nsrv, naddrs := b.nginxServers(n)
			ng, err := baseline.StartNginxBackends(filepath.Join(b.work, fmt.Sprintf("nginx-%d", n)), naddrs)
			if err != nil {
				return err
			}
			psrv, admins := b.fleetServers(n)
			for _, t := range []struct {
				target  string
				servers []settings.Server
				admins  []string
			}{{balancer.Proxies, psrv, admins}, {balancer.Nginx, nsrv, nil}} {
				h, err := b.haproxy(fmt.Sprintf("%s-%d", t.target, n), t.servers, "", false)
				if err != nil {
					ng.Stop()
					return err
				}
				for _, scheme := range []string{balancer.HTTP, balancer.HTTPS} {
					url := h.URL
					if scheme == balancer.HTTPS {
						url = h.TLSURL
					}
					r, cs, err := b.measure(fmt.Sprintf("HAProxy in front of %d %s, %s", n, t.target, scheme), url, b.hotCodes, b.c.warm, b.c.dur, t.admins)
					if err != nil {
						h.Stop()
						ng.Stop()
						return err
					}
					k := balancer.Path{Target: t.target, N: n, Scheme: scheme}
					if o.path[k] == nil {
						o.path[k] = &measured{}
					}
					o.path[k].runs = append(o.path[k].runs, r)
					o.path[k].counters = addCounters(o.path[k].counters, cs)
				}
				h.Stop()
			}
			if err := ng.Stop(); err != nil {
				say("nginx stop: %v", err)
			}
		}
	}
	return nil
}

func addCounters(a, b balancer.Counters) balancer.Counters {
	return balancer.Counters{Requests: a.Requests + b.Requests, Hits: a.Hits + b.Hits, Replica: a.Replica + b.Replica,
		Primary: a.Primary + b.Primary, CacheEntries: b.CacheEntries, CacheBytes: b.CacheBytes}
}

// beforeAfter runs scenario 2 against a set of proxies that take the
// PROXY protocol and plain connections alike from the balancer.
func (b *bench) beforeAfter(o *outcome) error {
	set, err := b.startSet("pp", portPPRedirect, portPPAdmin, "-proxy-protocol")
	if err != nil {
		return err
	}
	defer set.stop()
	var urls []string
	for _, srv := range set.servers {
		urls = append(urls, "http://"+net.JoinHostPort(srv.Addr, strconv.Itoa(srv.Port)))
	}
	if err := b.warmDirect(urls); err != nil {
		return err
	}
	for round := 1; round <= b.c.rounds; round++ {
		say("before and after, round %d of %d", round, b.c.rounds)
		for _, v := range []struct {
			name   string
			before bool
			m      *measured
		}{{"before", true, &o.before}, {"after", false, &o.after}} {
			h, err := b.haproxy("pp-"+v.name, set.servers, "", v.before)
			if err != nil {
				return err
			}
			r, cs, err := b.measure(fmt.Sprintf("HAProxy as %s issue 19, in front of %d proxies with -proxy-protocol, http", v.name, b.c.large),
				h.URL, b.hotCodes, b.c.warm, b.c.dur, set.admins)
			h.Stop()
			if err != nil {
				return err
			}
			v.m.runs = append(v.m.runs, r)
			v.m.counters = addCounters(v.m.counters, cs)
		}
	}
	return nil
}

// hashing runs scenario 3: for each cache size, each mode in front of
// fresh proxies, Zipf over every link.
func (b *bench) hashing(o *outcome) error {
	caches := []int64{0}
	if b.c.smallCache > 0 {
		caches = append(caches, b.c.smallCache)
	}
	for _, cb := range caches {
		for _, mode := range []string{"roundrobin", "uri-consistent"} {
			// The 16 proxies share one replica here (a replica each
			// would be 16 copies of the links on one disk): one lookup
			// worker each keeps the queries on it at once to what 16
			// replicas would see, one each. (With 4 each it was
			// overrun on 2 cores; its timed-out lookups then made every
			// proxy unready at once, and HAProxy answered 503 to most
			// of the run: fixed in the proxy, TestReadyFollowsThePoller.)
			args := []string{"-lookup-workers", "1"}
			if cb > 0 {
				args = append(args, "-cache-bytes", strconv.FormatInt(cb, 10))
			}
			set, err := b.startSet("hash", portHashRedirect, portHashAdmin, args...)
			if err != nil {
				return err
			}
			h, err := b.haproxy("hash-"+mode, set.servers, mode, false)
			if err != nil {
				set.stop()
				return err
			}
			name := fmt.Sprintf("%s in front of %d fresh proxies, cache %s, Zipf over %d links", mode, b.c.large, cacheName(cb), b.c.links)
			r, cs, err := b.measure(name, h.URL, b.allCodes, b.c.hashWarm, b.c.hashDur, set.admins)
			h.Stop()
			set.stop()
			if err != nil {
				return err
			}
			say("%s: %.0f requests/s, cache hit ratio %.3f", name, r.RPS(), cs.HitRatio())
			o.hash = append(o.hash, hashPoint{mode: mode, cacheBytes: cb, res: r, counters: cs})
		}
	}
	return nil
}

func cacheName(cb int64) string {
	if cb == 0 {
		return "the proxy's default"
	}
	if cb%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", cb>>20)
	}
	return fmt.Sprintf("%d bytes", cb)
}

// proxySet is -proxies proxies of the driver's own, on the fleet's proxy
// host addresses (beside its own proxies, where it has them), each
// reading that host's replica.
type proxySet struct {
	cmds    []*exec.Cmd
	servers []settings.Server
	admins  []string
}

// startSet starts a set on the given ports, with args added to the flags
// the fleet gives its proxies, and waits until each listens.
func (b *bench) startSet(name string, port, adminPort int, args ...string) (*proxySet, error) {
	say("starting %d proxies (%s) %s", b.c.large, name, strings.Join(args, " "))
	s := &proxySet{}
	for i := range b.c.large {
		id := fmt.Sprintf("%s-%02d", name, i+1)
		host := b.f.ProxyHost(i)
		cmd := b.f.Command(b.ctx, "proxy", append([]string{"-id", id,
			"-listen", net.JoinHostPort(host, strconv.Itoa(port)),
			"-admin-listen", net.JoinHostPort(host, strconv.Itoa(adminPort)),
			"-log-dir", filepath.Join(b.work, "proxies", id),
			// As the fleet's proxies: believe the balancer's headers only.
			"-trusted-proxies", b.lbHost}, args...)...)
		// Proxy i reads host i's replica, or the one replica of a fleet
		// of one host.
		replica := b.f.Replicas[i%len(b.f.Replicas)]
		cmd.Env = append(cmd.Env, "SHORTFLEET_REPLICA_DSN="+replica.DSN(localfleet.Database), "SHORTFLEET_PRIMARY_DSN="+b.f.PrimaryDSN())
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		out, err := os.OpenFile(filepath.Join(b.work, id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			s.stop()
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = out, out
		err = cmd.Start()
		out.Close()
		if err != nil {
			s.stop()
			return nil, fmt.Errorf("start proxy %s: %w", id, err)
		}
		s.cmds = append(s.cmds, cmd)
		s.servers = append(s.servers, settings.Server{Name: id, Addr: host, Port: port, CheckPort: adminPort})
		s.admins = append(s.admins, "http://"+net.JoinHostPort(host, strconv.Itoa(adminPort)))
	}
	for i, srv := range s.servers {
		for _, p := range []int{srv.Port, srv.CheckPort} {
			if err := baseline.WaitListening(net.JoinHostPort(srv.Addr, strconv.Itoa(p)), time.Minute); err != nil {
				s.stop()
				return nil, fmt.Errorf("proxy %s: %w (log: %s)", srv.Name, err, filepath.Join(b.work, s.servers[i].Name+".log"))
			}
		}
	}
	return s, nil
}

// stop stops every proxy of the set with SIGTERM, at once.
func (s *proxySet) stop() {
	var wg sync.WaitGroup
	for _, c := range s.cmds {
		wg.Go(func() { c.Process.Signal(syscall.SIGTERM); c.Wait() })
	}
	wg.Wait()
	s.cmds = nil
}
