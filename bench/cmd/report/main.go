// Command report is `make bench`: it brings up the local fleet, runs every
// scenario with its baseline in the same run, and writes one dated report,
// bench/results/<date>-report.md with SVG charts beside it, the same body
// in bench/README.md and a short table in the top README.md.
//
// Phase one, a fleet with one proxy host (the figures per process):
//
//   - nginx `return 302` with a gzip-buffered access log (baseline);
//   - cached redirects, codes Zipf-skewed over the small link set, the
//     proxy first asked for each of those codes once (-fill-cache), as a
//     proxy that has served them a while holds them: nginx never misses;
//   - cold redirects, over the small set and over the large set (seeded
//     into a database of its own on the same primary and replica), each
//     on a proxy whose cache holds nothing, measured in interleaved
//     rounds: first open loop, at the fixed rates of -cold-rates, each
//     request a code asked for the first time (the cold_p99_growth_10m
//     headline: the p99 ratio at the highest rate), then closed loop with
//     wrk, uniform over the links, beside `pgbench -S` on the same replica
//     (baseline);
//   - link creation through the API beside pgbench single-row INSERTs
//     (baseline), sampling the replica's lag meanwhile;
//   - mixed: redirects and creations at once, beside each alone;
//   - mapreduce ingest of a five-minute window at 1x and 10x records,
//     beside the Arrow reader decoding the same segments (baseline).
//
// Phase two, a fleet of -proxies proxy hosts behind HAProxy: cached
// redirects through the balancer and straight to one proxy, and the time
// a disabled link takes to stop redirecting on every proxy.
//
// Its output ends with one "bench: NAME VALUE" line a headline figure:
// each scenario's ratio to its baseline at the middle connection count,
// named after the scenario (cached_redirects_zipf_ratio, ...),
// cold_p99_growth_10m and takedown_median_ms.
//
//	make bench                                   (the published run)
//	make bench BENCH_LINKS=100000 BENCH_DURATION=3s   (a quick check)
//	go run ./bench/cmd/report -bin bin -links 1000000 -links-small 1000000 \
//	  -duration 5s -connections 64 -scenarios cached [-profile-dir DIR]
//	                                             (the cached comparison alone)
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/bench/internal/baseline"
	"shortfleet/bench/internal/fill"
	"shortfleet/bench/internal/ingest"
	"shortfleet/bench/internal/metrics"
	"shortfleet/bench/internal/report"
	"shortfleet/bench/internal/seed"
	"shortfleet/bench/internal/takedown"
	"shortfleet/bench/internal/wrk"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/sql/codes"
)

// config is the run's settings, from flags.
type config struct {
	links, linksSmall int64
	sample            int
	zipf              float64
	conns             []int
	connsFlag         string
	dur, warm         time.Duration
	dbConns           int
	records           int
	proxies           int
	takedowns         int
	bin               string
	results           string
	readme, top       string
	fillCache         bool
	profileDir        string
	scenarios         string // all; cold: the cold scenarios only (coldOnly); cached: the cached ones only
	coldRounds        int    // interleaved rounds of each cold point (measureCold)
	coldProfiles      string // folder for the cold proxies' CPU profiles, none if empty
	coldRates         []int  // open-loop requests a second of the cold scenarios (measureOpen)
	coldOpenRounds    int
	coldOpenDur       time.Duration
	coldOpenWarm      time.Duration
}

func main() {
	var c config
	var conns string
	flag.Int64Var(&c.links, "links", 10_000_000, "links seeded for the large cold scenario")
	flag.Int64Var(&c.linksSmall, "links-small", 1_000_000, "links seeded first: the cached and the small cold scenario draw from them")
	flag.IntVar(&c.sample, "sample", 1_000_000, "codes wrk draws the cold scenarios from: a uniform sample of the links when there are more")
	flag.Float64Var(&c.zipf, "zipf", 1.1, "Zipf exponent of the cached scenarios")
	flag.StringVar(&conns, "connections", "16,64,256", "wrk connection counts, each a point of every scenario")
	flag.DurationVar(&c.dur, "duration", 10*time.Second, "length of each measured run")
	flag.DurationVar(&c.warm, "warmup", 3*time.Second, "length of each warm-up run")
	flag.IntVar(&c.dbConns, "db-connections", 4, "the cold proxy's replica lookups at once, and pgbench -S's clients")
	flag.IntVar(&c.records, "records", 3_000_000, "records of the 10x ingest window (the 1x window has a tenth)")
	flag.IntVar(&c.proxies, "proxies", 16, "proxy hosts behind HAProxy in phase two")
	flag.IntVar(&c.takedowns, "takedowns", 10, "links disabled for the takedown figure")
	flag.BoolVar(&c.fillCache, "fill-cache", true, "ask the proxy for every hot code once before the cached runs (false: the Zipf warm-up alone, as before issue 23)")
	flag.StringVar(&c.profileDir, "profile-dir", "", "save a CPU profile of the fleet's proxy during each cached run into this folder (cached-<connections>.pprof)")
	flag.StringVar(&c.bin, "bin", "bin", "folder with the binaries")
	flag.StringVar(&c.results, "results", "bench/results", "folder for the dated report and its charts")
	flag.StringVar(&c.readme, "readme", "bench/README.md", "README whose bench-report section is rewritten")
	flag.StringVar(&c.top, "top-readme", "README.md", "README whose bench-latest section is rewritten")
	flag.StringVar(&c.scenarios, "scenarios", "all", "all; cold: only the cold scenarios, with the replica's evidence; cached: only phase one's cached redirects beside nginx (neither writes a report)")
	flag.IntVar(&c.coldRounds, "cold-rounds", 3, "rounds of each closed-loop (wrk) cold point, small and large set interleaved, each -duration / rounds long")
	flag.StringVar(&c.coldProfiles, "cold-profiles", "", "folder to save a CPU profile of each cold proxy in, taken during its first round at each connection count")
	var coldRates string
	flag.StringVar(&coldRates, "cold-rates", "600,2000", "open-loop requests a second of the cold scenarios, comma-separated; the cold_p99_growth_10m headline is the highest's")
	flag.IntVar(&c.coldOpenRounds, "cold-open-rounds", 5, "open-loop rounds of each cold rate, small and large set interleaved")
	flag.DurationVar(&c.coldOpenDur, "cold-open-duration", 5*time.Second, "length of each open-loop cold run, its warm-up included")
	flag.DurationVar(&c.coldOpenWarm, "cold-open-warmup", time.Second, "first part of each open-loop cold run not counted (the client opens its connections)")
	flag.Parse()
	c.connsFlag = conns
	c.coldRates = positives("cold-rates", coldRates)
	if c.coldOpenRounds < 1 || c.coldOpenDur <= c.coldOpenWarm {
		fmt.Fprintln(os.Stderr, "report: want -cold-open-rounds at least 1, -cold-open-duration above -cold-open-warmup")
		os.Exit(2)
	}
	c.conns = positives("connections", conns)
	if c.scenarios != "all" && c.scenarios != "cold" && c.scenarios != "cached" {
		fmt.Fprintf(os.Stderr, "report: -scenarios %q: want all, cold or cached\n", c.scenarios)
		os.Exit(2)
	}
	if c.linksSmall > c.links {
		c.linksSmall = c.links
	}
	if n := openRequests(c); c.scenarios != "cached" && int64(n) > c.linksSmall {
		fmt.Fprintf(os.Stderr, "report: the cold open loop asks each set %d links once, more than -links-small %d: lower -cold-rates, -cold-open-rounds or -cold-open-duration\n", n, c.linksSmall)
		os.Exit(2)
	}
	t := time.Now()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	say("done in %s", time.Since(t).Round(time.Second))
}

// positives is the comma-separated positive numbers of flag name, whose
// value is v; a bad one ends the program.
func positives(name, v string) []int {
	var ns []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "report: bad -%s %q\n", name, v)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	return ns
}

var start = time.Now()

func say(format string, args ...any) {
	fmt.Printf("report [%5.0fs]: "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
}

// Scenario names: the table's first column, and the charts' legends.
const (
	sNginx       = "nginx `return 302`, gzip log"
	sCached      = "cached redirects, Zipf"
	sColdSmall   = "cold redirects, uniform, small set"
	sColdLarge   = "cold redirects, uniform, large set"
	sPgbenchS    = "`pgbench -S` on the replica"
	sCreate      = "link creation, API"
	sPgInsert    = "`pgbench` single-row INSERT"
	sMixedRedir  = "mixed: redirects beside creations"
	sMixedCreate = "mixed: creations beside redirects"
	sBalanced    = "cached redirects via HAProxy"
	sDirect      = "cached redirects, one proxy of the fleet"
	sDecode      = "Arrow decode of the segments"
	sRandom      = "random codes (404), cached proxy"
	sIngest1     = "mapreduce ingest, 1x window"
	sIngest10    = "mapreduce ingest, 10x window"
)

// lagStats summarises the replica's lag sampled during a run.
type lagStats struct {
	samples             int
	p50, p99, max       time.Duration
	bytesP99, bytesMax  int64
	replayedWithinOneMs float64 // share of samples with no bytes outstanding
}

// outcome is everything a run measured beyond the points.
type outcome struct {
	res          report.Results
	lag          map[int]lagStats
	takedowns    []time.Duration
	seedSmall    time.Duration
	seedLarge    time.Duration
	replaySmall  time.Duration
	replayLarge  time.Duration
	ingest1      ingest.Run
	ingest10     ingest.Run
	win1, win10  *ingest.Window
	pgCmd        string
	wrkCmd       string
	perBatch     float64
	flood        floodStats
	balancedNote string
	cachedMisses float64    // replica lookups of the fleet's proxy during the cached runs
	open         []openRate // the cold scenarios' open-loop rounds
}

func run(c config) error {
	ctx := context.Background()
	work, cleanup, err := report.WorkDir("report", false)
	if err != nil {
		return err
	}
	defer cleanup()
	if c.scenarios == "cold" {
		return coldOnly(ctx, c, work)
	}
	var o outcome
	o.lag = map[int]lagStats{}
	if err := phaseOne(ctx, c, work, &o); err != nil {
		return err
	}
	if c.scenarios == "cached" {
		return nil
	}
	if err := phaseTwo(ctx, c, work, &o); err != nil {
		return err
	}
	return write(c, &o)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func fleetIn(ctx context.Context, c config, dir string, proxies int, balancer bool) (*localfleet.Fleet, error) {
	binAbs, _ := filepath.Abs(c.bin)
	subnet, err := localfleet.FreeSubnet()
	if err != nil {
		return nil, err
	}
	say("starting a %d-proxy fleet on %s.x", proxies, subnet)
	return localfleet.Start(ctx, localfleet.Config{
		StateDir: dir, BinDir: binAbs, Proxies: proxies, Subnet: subnet, Schedule: "@every 1000h",
		NoBalancer: !balancer,
		// One bench account creates as fast as it can.
		PrimaryArgs: []string{"-rate-create", "0", "-rate-create-addr", "0"},
	}, quietLogger())
}

// runner runs wrk and turns its summary into points.
type runner struct {
	c   config
	ctx context.Context
}

func (r runner) opts(url, script string, conns int, env ...string) wrk.Options {
	return wrk.Options{URL: url, Script: script, Threads: 1, Connections: conns, Duration: r.c.dur, Env: env}
}

func (r runner) warmup(o wrk.Options) error {
	o.Duration = r.c.warm
	_, err := wrk.Run(r.ctx, o)
	return err
}

func point(scenario, base, unit string, conns int, w wrk.Result) report.Point {
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return report.Point{Scenario: scenario, Baseline: base, Conns: conns, Rate: w.RPS(), Unit: unit,
		P50: us(w.LatP50US), P99: us(w.LatP99US), P999: us(w.LatP999US), Errors: w.Errors()}
}

func (r runner) measure(scenario, base, unit string, o wrk.Options) (report.Point, error) {
	say("wrk: %s, %d connections", scenario, o.Connections)
	w, err := wrk.Run(r.ctx, o)
	if err != nil {
		return report.Point{}, fmt.Errorf("%s: %w", scenario, err)
	}
	return point(scenario, base, unit, o.Connections, w), nil
}

// floodStats is what a flood of random codes did on the proxy.
type floodStats struct {
	point                            report.Point
	requests, notFound               float64 // by the proxy's counters
	replicaLookups, batches, primary float64
	windowRejections                 float64
}

// flood sends random codes at 64 connections to the fleet's proxy and
// reads, from its metrics, how many reached a database.
func (r runner) flood(f *localfleet.Fleet, proxyURL, script string) (floodStats, error) {
	admin := f.AdminURLs()[0]
	read := func() (map[string]float64, error) { return metrics.Scrape(admin, f.Secrets.AdminToken) }
	m0, err := read()
	if err != nil {
		return floodStats{}, err
	}
	say("wrk: %s, 64 connections", sRandom)
	o := r.opts(proxyURL, script, 64, "RANDOM_CODES=1")
	w, err := wrk.Run(r.ctx, o)
	if err != nil {
		return floodStats{}, fmt.Errorf("%s: %w", sRandom, err)
	}
	m1, err := read()
	if err != nil {
		return floodStats{}, err
	}
	d := func(k string) float64 { return m1[k] - m0[k] }
	p := point(sRandom, "", "requests/s", 64, w)
	p.Errors = w.Errors() - w.ErrorsStatus // every answer is a 404, which wrk counts as a status error
	return floodStats{point: p, requests: float64(w.Requests), notFound: d(`shortfleet_proxy_requests_total{status="404"}`),
		replicaLookups: d(metrics.ReplicaLookups), batches: d(metrics.ReplicaBatches),
		primary: d("shortfleet_proxy_primary_asks_total"), windowRejections: d("shortfleet_proxy_window_rejections_total")}, nil
}

func codec(f *localfleet.Fleet) (*codes.Codec, error) {
	key, err := hex.DecodeString(f.Secrets.CodeKey)
	if err != nil {
		return nil, err
	}
	return codes.New(key)
}

// apiKey signs a bench account up and returns its API key.
func apiKey(f *localfleet.Fleet) (string, error) {
	return metrics.Signup(f.PrimaryURL(), "bench@example.com")
}

// fleetOne starts phase one's fleet, of one proxy host, and returns its
// code codec.
func fleetOne(ctx context.Context, c config, work string) (*localfleet.Fleet, *codes.Codec, error) {
	f, err := fleetIn(ctx, c, filepath.Join(work, "fleet1"), 1, false)
	if err != nil {
		return nil, nil, err
	}
	cd, err := codec(f)
	if err != nil {
		f.Stop()
		return nil, nil, err
	}
	return f, cd, nil
}

func phaseOne(ctx context.Context, c config, work string, o *outcome) error {
	f, cd, err := fleetOne(ctx, c, work)
	if err != nil {
		return err
	}
	defer f.Stop()
	dsn := f.Primary.DSN(localfleet.Database)
	replicas := []string{f.Replicas[0].DSN(localfleet.Database)}

	say("seeding %d links with COPY", c.linksSmall)
	t := time.Now()
	first, last, err := seed.Links(ctx, dsn, c.linksSmall)
	if err != nil {
		return err
	}
	if err := seed.Settle(ctx, dsn); err != nil {
		return err
	}
	o.seedSmall = time.Since(t)
	if o.replaySmall, err = seed.WaitReplayed(ctx, dsn, replicas); err != nil {
		return err
	}
	hot := filepath.Join(work, "hot.txt") // the Zipf ranks: the first links
	if err := seed.WriteCodes(hot, cd, first, first+min(c.linksSmall, int64(c.sample))-1); err != nil {
		return err
	}

	pgBin, _ := pgcluster.FindBinDir()
	pg := baseline.Pgbench{Bin: filepath.Join(pgBin, "pgbench"), Host: f.PrimaryHost(), Port: localfleet.PortPostgres,
		User: pgcluster.Superuser, Password: f.Secrets.PGPassword, DB: "pgbench"}
	if err := f.Primary.CreateDatabase(ctx, "pgbench"); err != nil {
		return err
	}
	if err := pg.Init(ctx, 10); err != nil {
		return err
	}
	if _, err := seed.WaitReplayed(ctx, dsn, replicas); err != nil {
		return err
	}
	pgR := pg
	pgR.Host = f.ProxyHost(0)

	ng, err := baseline.StartNginx(filepath.Join(work, "nginx"), net.JoinHostPort(strings.TrimSuffix(f.PrimaryHost(), ".2")+".5", "8090"))
	if err != nil {
		return err
	}
	defer ng.Stop()

	r := runner{c: c, ctx: ctx}
	proxyURL := f.RedirectURLs()[0]
	zipf := fmt.Sprintf("ZIPF_S=%g", c.zipf)
	redirects := "bench/wrk/redirects.lua" // run from the repository's root, as make does
	o.wrkCmd = strings.Replace(r.opts("URL", redirects, 0, "CODES=codes.txt", zipf).Command(), "-c0", "-c{"+c.connsFlag+"}", 1)
	// Every hot code once into the proxy's cache, as a proxy that has
	// served this link set for a while holds it (the default cache bound
	// holds about 1.3 M such links): a Zipf warm-up of a few seconds
	// reaches only the head, and the tail's first requests then went to
	// the replica during the measured runs, which nginx's `return 302`
	// never does.
	if c.fillCache {
		t = time.Now()
		bad, err := fill.Codes(ctx, proxyURL, hot, 64)
		if err != nil {
			return err
		}
		if bad > 0 {
			return fmt.Errorf("filling the proxy's cache: %d of the hot codes were not redirects", bad)
		}
		say("asked the proxy for each of the %d hot codes once, in %s", min(c.linksSmall, int64(c.sample)), time.Since(t).Round(time.Millisecond))
	}
	for _, u := range []string{ng.URL, proxyURL} {
		if err := r.warmup(r.opts(u, redirects, 64, "CODES="+hot, zipf)); err != nil {
			return err
		}
	}

	say("pgbench -S on the replica, %d clients", c.dbConns)
	// As for the INSERTs below: allow for pgbench's connection time.
	tps, cmd, err := pgR.SelectOnly(ctx, c.dbConns, 1, c.dur+time.Duration(c.dbConns)*100*time.Millisecond)
	if err != nil {
		return err
	}
	o.pgCmd = cmd
	o.res = append(o.res, report.Point{Scenario: sPgbenchS, Rate: tps, Unit: "tps"})
	for _, n := range c.conns {
		for _, s := range []struct {
			name, base, url, codes string
			env                    []string
		}{
			{sNginx, "", ng.URL, hot, []string{zipf}},
			{sCached, sNginx, proxyURL, hot, []string{zipf}},
		} {
			m0, _ := metrics.Scrape(f.AdminURLs()[0], f.Secrets.AdminToken)
			if s.name == sCached && c.profileDir != "" {
				go cpuProfile(f.AdminURLs()[0], f.Secrets.AdminToken, filepath.Join(c.profileDir, fmt.Sprintf("cached-%d.pprof", n)), c.dur/2)
			}
			p, err := r.measure(s.name, s.base, "requests/s", r.opts(s.url, redirects, n, append([]string{"CODES=" + s.codes}, s.env...)...))
			if err != nil {
				return err
			}
			if s.name == sCached {
				m1, _ := metrics.Scrape(f.AdminURLs()[0], f.Secrets.AdminToken)
				k := metrics.ReplicaLookups
				o.cachedMisses += m1[k] - m0[k]
				say("%s, %d connections: %.0f requests/s, %.2f of nginx; %.0f of its lookups went to the replica",
					s.name, n, p.Rate, p.Rate/o.res[len(o.res)-1].Rate, m1[k]-m0[k])
			}
			o.res = append(o.res, p)
		}
	}
	if c.scenarios == "cached" {
		return nil
	}

	// A flood of codes nobody issued: answered 404 by the proxy, none of
	// them may reach its replica or the primary.
	if o.flood, err = r.flood(f, proxyURL, redirects); err != nil {
		return err
	}

	// Creation, alone and beside redirects, with the replica's lag.
	key, err := apiKey(f)
	if err != nil {
		return err
	}
	create := r.opts(f.PrimaryURL(), "bench/wrk/create.lua", 16, "KEY="+key)
	if err := r.warmup(create); err != nil {
		return err
	}
	for _, n := range c.conns {
		create.Connections = n
		var p report.Point
		lag, err := sampleLag(ctx, dsn, replicas[0], func() error {
			var err error
			p, err = r.measure(sCreate, sPgInsert, "creations/s", create)
			return err
		})
		if err != nil {
			return err
		}
		o.lag[n] = lag
		o.res = append(o.res, p)
	}
	say("pgbench single-row INSERTs")
	conn, err := f.Primary.Connect(ctx, localfleet.Database)
	if err != nil {
		return err
	}
	// Its own sequence, of the same kind: the links' would leave gaps in
	// the ids the cold scenario's codes are drawn from.
	_, err = conn.Exec(ctx, `CREATE TABLE bench_links (LIKE links INCLUDING DEFAULTS INCLUDING INDEXES); CREATE SEQUENCE bench_links_seq`)
	conn.Close(ctx)
	if err != nil {
		return err
	}
	insert := filepath.Join(work, "insert.sql")
	os.WriteFile(insert, []byte(`INSERT INTO bench_links (id, user_id, target, redirect_type) VALUES (nextval('bench_links_seq'), 1, 'https://example.com/landing/pgbench?utm_source=bench', 302);`+"\n"), 0o644)
	pgP := pg
	pgP.DB = localfleet.Database
	for _, n := range c.conns {
		// pgbench opens its connections one after another inside -T
		// (SCRAM, a few ms each, far more on a loaded machine; a run in
		// which none finished is tried once more below) and leaves
		// that time out of its tps: allow for it, so every client runs.
		d := c.dur + time.Duration(n)*100*time.Millisecond
		tps, _, err := pgP.Custom(ctx, insert, n, 1, d)
		if err != nil {
			// A run in which no transaction finished prints no tps (an
			// fsync stall on a shared disk); one more try, then a gap.
			say("pgbench: %v; once more", err)
			if tps, _, err = pgP.Custom(ctx, insert, n, 1, d); err != nil {
				say("pgbench failed again, no baseline at %d clients: %v", n, err)
				continue
			}
		}
		o.res = append(o.res, report.Point{Scenario: sPgInsert, Conns: n, Rate: tps, Unit: "tps"})
	}
	for _, n := range c.conns {
		create.Connections = n
		redir := r.opts(proxyURL, redirects, n, "CODES="+hot, zipf)
		var pr, pc report.Point
		var er, ec error
		var wg sync.WaitGroup
		wg.Go(func() { pr, er = r.measure(sMixedRedir, sCached, "requests/s", redir) })
		wg.Go(func() { pc, ec = r.measure(sMixedCreate, sCreate, "creations/s", create) })
		wg.Wait()
		if er != nil || ec != nil {
			return fmt.Errorf("mixed: %v, %v", er, ec)
		}
		o.res = append(o.res, pr, pc)
	}

	// The cold scenarios: the small set, and the large set in a database
	// of its own, measured interleaved.
	cr, err := measureCold(ctx, c, f, work, first, last)
	if err != nil {
		return err
	}
	o.res = append(o.res, cr.res...)
	o.seedLarge, o.replayLarge, o.perBatch, o.open = cr.seedLarge, cr.replayLarge, cr.perBatch, cr.open
	if err := ng.Stop(); err != nil {
		say("nginx stop: %v", err)
	}

	// Ingest: the 10x window is the decode baseline's input too.
	say("writing the ingest windows: %d and %d records over %d proxies", c.records/10, c.records, 16)
	w1, err := ingest.Write(filepath.Join(work, "ingest1"), "bench1x", 16, c.records/10, 5, 1_000_000, quietLogger())
	if err != nil {
		return err
	}
	defer w1.Close()
	w10, err := ingest.Write(filepath.Join(work, "ingest10"), "bench10x", 16, c.records, 5, 1_000_000, quietLogger())
	if err != nil {
		return err
	}
	defer w10.Close()
	o.win1, o.win10 = w1, w10
	say("decoding the 10x window")
	dec, err := w10.Decode()
	if err != nil {
		return err
	}
	o.res = append(o.res, report.Point{Scenario: sDecode, Rate: dec, Unit: "records/s"})
	mr := filepath.Join(c.bin, "mapreduce")
	say("mapreduce -once, 1x")
	if o.ingest1, err = w1.Once(ctx, mr, dsn); err != nil {
		return err
	}
	say("mapreduce -once, 10x")
	if o.ingest10, err = w10.Once(ctx, mr, dsn); err != nil {
		return err
	}
	o.res = append(o.res,
		report.Point{Scenario: sIngest1, Baseline: sDecode, Rate: float64(w1.Records) / o.ingest1.Took.Seconds(), Unit: "records/s"},
		report.Point{Scenario: sIngest10, Baseline: sDecode, Rate: float64(w10.Records) / o.ingest10.Took.Seconds(), Unit: "records/s"})
	say("stopping the first fleet")
	return nil
}

func phaseTwo(ctx context.Context, c config, work string, o *outcome) error {
	if !localfleet.HAProxyInstalled() {
		return fmt.Errorf("haproxy is not installed (make bench runs deps.sh, which installs it)")
	}
	f, err := fleetIn(ctx, c, filepath.Join(work, "fleet2"), c.proxies, true)
	if err != nil {
		return err
	}
	defer f.Stop()
	cd, err := codec(f)
	if err != nil {
		return err
	}
	dsn := f.Primary.DSN(localfleet.Database)
	n := min(c.linksSmall, 100_000)
	first, last, err := seed.Links(ctx, dsn, n)
	if err != nil {
		return err
	}
	if err := f.WaitReplicas(ctx); err != nil {
		return err
	}
	hot := filepath.Join(work, "hot2.txt")
	if err := seed.WriteCodes(hot, cd, first, last); err != nil {
		return err
	}
	r := runner{c: c, ctx: ctx}
	zipf := fmt.Sprintf("ZIPF_S=%g", c.zipf)
	redirects := "bench/wrk/redirects.lua"
	bal, direct := f.BalancerURL(), f.RedirectURLs()[0]
	// Warm every proxy's cache through the balancer, then the one.
	if err := r.warmup(r.opts(bal, redirects, 64, "CODES="+hot, zipf)); err != nil {
		return err
	}
	if err := r.warmup(r.opts(direct, redirects, 64, "CODES="+hot, zipf)); err != nil {
		return err
	}
	// The one proxy measured alone gets every hot code once, as in phase
	// one (the proxies behind the balancer keep the Zipf warm-up).
	if c.fillCache {
		if _, err := fill.Codes(ctx, direct, hot, 64); err != nil {
			return err
		}
	}
	for _, n := range c.conns {
		for _, s := range []struct{ name, url string }{{sDirect, direct}, {sBalanced, bal}} {
			p, err := r.measure(s.name, sNginx, "requests/s", r.opts(s.url, redirects, n, "CODES="+hot, zipf))
			if err != nil {
				return err
			}
			o.res = append(o.res, p)
		}
	}
	say("takedowns: %d links disabled, each polled on all %d proxies until 410", c.takedowns, c.proxies)
	data, _ := os.ReadFile(hot)
	all := strings.Fields(string(data))
	pick := all[len(all)-min(c.takedowns, len(all)):]
	o.takedowns, err = takedown.Measure(ctx, dsn, f.RedirectURLs(), pick, cd)
	return err
}

// sampleLag runs fn while sampling, every 50 ms, how far the replica's
// replay is behind the primary: in bytes of WAL, and in time (now minus
// the commit time of the last transaction replayed, which under a steady
// write load is the lag a reader sees).
func sampleLag(ctx context.Context, primaryDSN, replicaDSN string, fn func() error) (lagStats, error) {
	pc, err := pgx.Connect(ctx, primaryDSN)
	if err != nil {
		return lagStats{}, err
	}
	defer pc.Close(context.Background())
	rc, err := pgx.Connect(ctx, replicaDSN)
	if err != nil {
		return lagStats{}, err
	}
	defer rc.Close(context.Background())
	stop := make(chan struct{})
	var times []time.Duration
	var bytes []int64
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
			var lsn string
			if err := pc.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
				done <- err
				return
			}
			var behind int64
			var ms float64
			if err := rc.QueryRow(ctx, `SELECT greatest(pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()), 0)::bigint,
				coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000, 0)`, lsn).Scan(&behind, &ms); err != nil {
				done <- err
				return
			}
			bytes = append(bytes, behind)
			times = append(times, time.Duration(ms*float64(time.Millisecond)))
		}
	}()
	ferr := fn()
	close(stop)
	if err := <-done; err != nil {
		return lagStats{}, fmt.Errorf("sample replica lag: %w", err)
	}
	if ferr != nil {
		return lagStats{}, ferr
	}
	if len(times) == 0 {
		return lagStats{}, fmt.Errorf("no lag samples")
	}
	slices.Sort(times)
	slices.Sort(bytes)
	at := func(p float64) int { return int(float64(len(times)-1) * p) }
	zero := 0
	for _, b := range bytes {
		if b == 0 {
			zero++
		}
	}
	return lagStats{samples: len(times), p50: times[at(0.5)], p99: times[at(0.99)], max: times[len(times)-1],
		bytesP99: bytes[at(0.99)], bytesMax: bytes[len(bytes)-1], replayedWithinOneMs: float64(zero) / float64(len(bytes))}, nil
}

// batchCounters reads a cold proxy's replica lookups and the queries
// they took, from its admin metrics at admin.
func batchCounters(f *localfleet.Fleet, admin string) (lookups, batches float64, err error) {
	m, err := metrics.Scrape(admin, f.Secrets.AdminToken)
	return m[metrics.ReplicaLookups], m[metrics.ReplicaBatches], err
}

func durs(ds []time.Duration) (median, maxD time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)-1]
}

// cpuProfile saves a CPU profile of the proxy whose admin listener is
// admin, taken over d, to path.
func cpuProfile(admin, token, path string, d time.Duration) {
	if err := metrics.SaveProfile(admin, token, fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(int(d.Seconds()), 1)), path); err != nil {
		say("profile: %v", err)
	}
}
