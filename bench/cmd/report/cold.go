package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/bench/internal/baseline"
	"shortfleet/bench/internal/fixedrate"
	"shortfleet/bench/internal/metrics"
	"shortfleet/bench/internal/report"
	"shortfleet/bench/internal/seed"
	"shortfleet/provisioning/localfleet"
	sfsql "shortfleet/sql"
	"shortfleet/sql/codes"
)

// coldProxy is a proxy on the fleet's proxy host and replica with a cache
// of one byte: every request it answers is a replica lookup.
type coldProxy struct {
	cmd       *exec.Cmd
	url       string
	adminHost string
}

// startCold starts a cold proxy reading the database db, listening on
// port, its admin API on port+1000.
func startCold(ctx context.Context, c config, f *localfleet.Fleet, work, name, db string, port int) (*coldProxy, error) {
	host := f.ProxyHost(0)
	cmd := f.Command(ctx, "proxy", "-id", name,
		"-listen", net.JoinHostPort(host, strconv.Itoa(port)), "-admin-listen", net.JoinHostPort(host, strconv.Itoa(port+1000)),
		"-log-dir", filepath.Join(work, name), "-cache-bytes", "1", "-lookup-workers", strconv.Itoa(c.dbConns))
	cmd.Env = append(cmd.Env, "SHORTFLEET_REPLICA_DSN="+f.Replicas[0].DSN(db)+"&pool_max_conns="+strconv.Itoa(c.dbConns+1),
		"SHORTFLEET_PRIMARY_DSN="+f.Primary.DSN(db), "SHORTFLEET_DSN="+f.Primary.DSN(db))
	out, _ := os.Create(filepath.Join(work, name+".log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &coldProxy{cmd: cmd, url: "http://" + net.JoinHostPort(host, strconv.Itoa(port)), adminHost: net.JoinHostPort(host, strconv.Itoa(port+1000))}
	if err := baseline.WaitListening(net.JoinHostPort(host, strconv.Itoa(port)), 30*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

func (p *coldProxy) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
}

// coldGrowth is the headline of the cold scenarios: the open-loop p99
// with the large set over the p99 with the small one (each the median of
// its rounds) at the highest of -cold-rates; false when either is missing.
func coldGrowth(open []openRate) (report.Headline, bool) {
	if len(open) == 0 {
		return report.Headline{}, false
	}
	top := open[0]
	for _, o := range open {
		if o.rate > top.rate {
			top = o
		}
	}
	ps, pl := top.median(0, p99), top.median(1, p99)
	if len(top.sets[0]) == 0 || len(top.sets[1]) == 0 || ps <= 0 {
		return report.Headline{}, false
	}
	return report.Headline{Name: "cold_p99_growth_10m", Value: float64(pl) / float64(ps)}, true
}

// openSample is one open-loop run against one set: latencies in µs from
// when each request was due, of the n counted (after the warm-up) that
// succeeded; replica is how many lookups the proxy sent its replica
// meanwhile (by its counters): one for each of the sent requests.
type openSample struct {
	p50, p99, p999  int64
	sent, n, failed int
	replica         float64
}

func p50(s openSample) int64  { return s.p50 }
func p99(s openSample) int64  { return s.p99 }
func p999(s openSample) int64 { return s.p999 }

// openRate is the open-loop rounds at one rate: per set (0 the small, 1
// the large), its runs in round order.
type openRate struct {
	rate int
	sets [2][]openSample
}

// median is the median over the rounds of set i of what pick takes.
func (o openRate) median(i int, pick func(openSample) int64) int64 {
	v := make([]int64, len(o.sets[i]))
	for k, s := range o.sets[i] {
		v[k] = pick(s)
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// largeDB is the database the large set is seeded into, on the same
// primary (so on the same replica, and read through the same
// shared_buffers) as the fleet's, which holds the small set.
const largeDB = "shortfleet_large"

// coldRun is what measureCold measured.
type coldRun struct {
	res                    report.Results
	seedLarge, replayLarge time.Duration
	settleLarge            time.Duration
	perBatch               float64 // lookups a replica query, small-set runs
	prewarmed              int64   // blocks seed.Prewarm read on the replica, both sets
	pairs                  map[int][]float64
	open                   []openRate // the open-loop rounds, the headline's
}

// measureCold runs the cold scenarios. The small set is the fleet's
// database, links [first, last] already seeded and settled; the large set
// is c.links links seeded into a database of its own on the same primary.
// One cold proxy reads each. First the open loop (measureOpen, the
// headline), then closed loop with wrk: they are measured interleaved, small then
// large then large then small, c.coldRounds times at each connection count, each run c.dur /
// c.coldRounds, so both sets see the same machine: on the shared 2 cores
// the p99 of one configuration measured twice a minute apart varied 2x.
// A point's rate is the rounds' mean, its latencies the rounds' medians.
func measureCold(ctx context.Context, c config, f *localfleet.Fleet, work string, first, last int64) (coldRun, error) {
	var out coldRun
	cd, err := codec(f)
	if err != nil {
		return out, err
	}
	dsn, replica := f.Primary.DSN(localfleet.Database), f.Replicas[0].DSN(localfleet.Database)
	ldsn, lreplica := f.Primary.DSN(largeDB), f.Replicas[0].DSN(largeDB)
	if err := f.Primary.CreateDatabase(ctx, largeDB); err != nil {
		return out, err
	}
	if err := sfsql.MigrateUp(ldsn, quietLogger()); err != nil {
		return out, err
	}
	for _, d := range []string{dsn, ldsn} {
		if err := prepareEvidence(ctx, d); err != nil {
			return out, err
		}
	}
	say("seeding %d links with COPY into %s", c.links, largeDB)
	t := time.Now()
	lfirst, llast, err := seed.Links(ctx, ldsn, c.links)
	if err != nil {
		return out, err
	}
	out.seedLarge = time.Since(t)
	t = time.Now()
	if err := seed.Settle(ctx, ldsn); err != nil {
		return out, err
	}
	out.settleLarge = time.Since(t)
	if out.replayLarge, err = seed.WaitReplayed(ctx, ldsn, []string{lreplica}); err != nil {
		return out, err
	}
	say("seeded in %s, settled in %s, replayed %s later", out.seedLarge.Round(time.Second), out.settleLarge.Round(time.Second), out.replayLarge.Round(time.Millisecond))
	blocks, err := seed.Prewarm(ctx, dsn, []string{replica})
	if err != nil {
		return out, err
	}
	lblocks, err := seed.Prewarm(ctx, ldsn, []string{lreplica})
	if err != nil {
		return out, err
	}
	out.prewarmed = blocks[0] + lblocks[0]
	say("prewarmed the replica: %d blocks of links and links_pkey, both sets", out.prewarmed)
	small, large := filepath.Join(work, "small.txt"), filepath.Join(work, "large.txt")
	if err := seed.WriteSample(small, cd, first, last, c.sample, rand.New(rand.NewPCG(1, 1))); err != nil {
		return out, err
	}
	if err := seed.WriteSample(large, cd, lfirst, llast, c.sample, rand.New(rand.NewPCG(2, 2))); err != nil {
		return out, err
	}
	type set struct {
		name, codes, replica string
		lo, hi               int64
		p                    *coldProxy
	}
	sets := []*set{{name: sColdSmall, codes: small, replica: replica, lo: first, hi: last},
		{name: sColdLarge, codes: large, replica: lreplica, lo: lfirst, hi: llast}}
	for i, db := range []string{localfleet.Database, largeDB} {
		p, err := startCold(ctx, c, f, work, "proxy-cold"+[]string{"", "-large"}[i], db, 8082+2*i)
		if err != nil {
			return out, err
		}
		defer p.stop()
		sets[i].p = p
	}
	// Open loop first, so that every code it asks is one nobody asked
	// before (wrk's sample then draws from the same links).
	targets := [2]openTarget{}
	for i, s := range sets {
		targets[i] = openTarget{url: s.p.url, admin: "http://" + s.p.adminHost, lo: s.lo, hi: s.hi}
	}
	if out.open, err = measureOpen(c, cd, f.Secrets.AdminToken, targets); err != nil {
		return out, err
	}
	r := runner{c: c, ctx: ctx}
	redirects := "bench/wrk/redirects.lua"
	for _, s := range sets {
		if err := r.warmup(r.opts(s.p.url, redirects, 64, "CODES="+s.codes)); err != nil {
			return out, err
		}
		if err := coldEvidence(ctx, s.replica, s.name, s.lo, s.hi); err != nil {
			return out, err
		}
	}
	rounds := max(c.coldRounds, 1)
	l0, q0, _ := batchCounters(f, "http://"+sets[0].p.adminHost)
	out.pairs = map[int][]float64{}
	for _, n := range c.conns {
		got := make([][]report.Point, len(sets))
		for k := range rounds {
			// Small then large, then large then small, ...: neither set
			// always follows the other.
			order := []int{0, 1}
			if k%2 == 1 {
				order = []int{1, 0}
			}
			for _, i := range order {
				s := sets[i]
				o := r.opts(s.p.url, redirects, n, "CODES="+s.codes)
				o.Duration = c.dur / time.Duration(rounds)
				b0, _ := replicaBlocks(ctx, s.replica)
				var prof chan error
				if c.coldProfiles != "" && k == 0 {
					prof = make(chan error, 1)
					path := filepath.Join(c.coldProfiles, fmt.Sprintf("cold-%s-%dc.pprof", []string{"small", "large"}[i], n))
					go func() {
						prof <- metrics.SaveProfile("http://"+s.p.adminHost, f.Secrets.AdminToken, fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(int((o.Duration-time.Second).Seconds()), 1)), path)
					}()
				}
				p, err := r.measure(s.name, sPgbenchS, "requests/s", o)
				if prof != nil {
					if perr := <-prof; perr != nil {
						say("profile: %v", perr)
					}
				}
				if err != nil {
					return out, err
				}
				b1, _ := replicaBlocks(ctx, s.replica)
				say("  round %d: %.0f requests/s, p50 %s, p99 %s, p99.9 %s, errors %d; replica: %s", k+1, p.Rate,
					report.Ms(p.P50), report.Ms(p.P99), report.Ms(p.P999), p.Errors, b1.minus(b0))
				got[i] = append(got[i], p)
			}
			out.pairs[n] = append(out.pairs[n], float64(got[1][k].P99)/float64(max(got[0][k].P99, 1)))
		}
		for i := range sets {
			out.res = append(out.res, medianPoint(got[i]))
		}
		say("  p99 large / small, round by round: %.2f", out.pairs[n])
	}
	l1, q1, _ := batchCounters(f, "http://"+sets[0].p.adminHost)
	out.perBatch = (l1 - l0) / max(q1-q0, 1)
	return out, nil
}

// openRequests is how many requests the open loop sends each cold proxy,
// each a link of its set asked once.
func openRequests(c config) int {
	n := 0
	for _, rate := range c.coldRates {
		n += c.coldOpenRounds * int(c.coldOpenDur.Seconds()*float64(rate))
	}
	return n
}

// openTarget is one cold proxy as the open loop sees it: its redirect
// and admin URLs and the ids of its set.
type openTarget struct {
	url, admin string
	lo, hi     int64
}

// measureOpen sends each cold proxy c.coldRates requests a second (open
// loop, bench/internal/fixedrate: each timed from when it was due, a
// stall counting against every request due during it), each request a
// code of its set drawn once, without replacement, so each one is a
// lookup on the replica of a link nobody asked for before. The two sets
// run in c.coldOpenRounds interleaved rounds at each rate, small then
// large, then large then small, each run c.coldOpenDur of which the first
// c.coldOpenWarm is not counted (the client opens its connections).
func measureOpen(c config, cd *codes.Codec, token string, ts [2]openTarget) ([]openRate, error) {
	perSet := openRequests(c)
	var codesOf [2][]string
	for i, t := range ts {
		ids, err := seed.Distinct(t.lo, t.hi, perSet, rand.New(rand.NewPCG(uint64(i)+4, 4)))
		if err != nil {
			return nil, fmt.Errorf("open loop: %w", err)
		}
		for _, id := range ids {
			code, err := cd.Encode(id)
			if err != nil {
				return nil, err
			}
			codesOf[i] = append(codesOf[i], code)
		}
	}
	var next [2]int // the first code of each set not asked yet
	var out []openRate
	for _, rate := range c.coldRates {
		o := openRate{rate: rate}
		for k := range c.coldOpenRounds {
			order := []int{0, 1}
			if k%2 == 1 {
				order = []int{1, 0}
			}
			for _, i := range order {
				t, todo := ts[i], codesOf[i][next[i]:]
				m0, _ := metrics.Scrape(t.admin, token)
				client := fixedrate.NewClient(nil, 64)
				res := fixedrate.Run(rate, c.coldOpenDur, c.coldOpenWarm, func(j int) bool {
					return fixedrate.Redirect(client, t.url, todo[j], j)
				})
				client.CloseIdleConnections()
				sent := int(c.coldOpenDur.Seconds() * float64(rate))
				next[i] += sent
				m1, _ := metrics.Scrape(t.admin, token)
				key := metrics.ReplicaLookups
				s := openSample{p50: res.Percentile(50), p99: res.Percentile(99), p999: res.Percentile(99.9),
					sent: sent, n: len(res.Lat), failed: res.Failed, replica: m1[key] - m0[key]}
				o.sets[i] = append(o.sets[i], s)
				say("  open loop, %s, %d/s, round %d: p50 %s, p99 %s, p99.9 %s; %d sent, %d counted, %d failed, %.0f replica lookups",
					[]string{sColdSmall, sColdLarge}[i], rate, k+1, usMs(s.p50), usMs(s.p99), usMs(s.p999), s.sent, s.n, s.failed, s.replica)
			}
		}
		say("  open loop, %d/s: p99 large / small %.2f (medians of %d rounds)", rate, float64(o.median(1, p99))/float64(max(o.median(0, p99), 1)), c.coldOpenRounds)
		out = append(out, o)
	}
	return out, nil
}

// usMs writes microseconds as milliseconds, as report.Ms does.
func usMs(us int64) string { return report.Ms(time.Duration(us) * time.Microsecond) }

// openTable is the open-loop runs: per rate and set, each round's
// percentiles, then their medians.
func openTable(open []openRate, small, large string) report.Table {
	t := report.Table{Header: []string{"rate", "set", "round", "p50", "p99", "p99.9", "requests sent", "counted", "failed", "replica lookups"}}
	for _, o := range open {
		for i, name := range []string{small, large} {
			for k, s := range o.sets[i] {
				t.Rows = append(t.Rows, []string{fmt.Sprintf("%d/s", o.rate), name, strconv.Itoa(k + 1), usMs(s.p50), usMs(s.p99), usMs(s.p999),
					strconv.Itoa(s.sent), strconv.Itoa(s.n), strconv.Itoa(s.failed), fmt.Sprintf("%.0f", s.replica)})
			}
			t.Rows = append(t.Rows, []string{fmt.Sprintf("%d/s", o.rate), name, "median", "**" + usMs(o.median(i, p50)) + "**",
				"**" + usMs(o.median(i, p99)) + "**", "**" + usMs(o.median(i, p999)) + "**", "", "", "", ""})
		}
	}
	return t
}

// openGrowth is the open-loop ratios, large set over small, per rate: of
// the medians of p50, p99 and p99.9.
func openGrowth(open []openRate, small, large string) report.Table {
	t := report.Table{Header: []string{"rate", "p50 " + large + " / " + small, "p99", "p99.9", "p99 of each round, large / small"}}
	r := func(o openRate, pick func(openSample) int64) string {
		return report.Ratio(float64(o.median(1, pick)), float64(o.median(0, pick)))
	}
	for _, o := range open {
		var each []string
		for k := range min(len(o.sets[0]), len(o.sets[1])) {
			each = append(each, report.Ratio(float64(o.sets[1][k].p99), float64(o.sets[0][k].p99)))
		}
		t.Rows = append(t.Rows, []string{fmt.Sprintf("%d/s", o.rate), r(o, p50), "**" + r(o, p99) + "**", r(o, p999), strings.Join(each, ", ")})
	}
	return t
}

// medianPoint is the rounds of one point as one: the mean rate, the
// median of each latency, the errors summed.
func medianPoint(ps []report.Point) report.Point {
	p := ps[0]
	med := func(get func(report.Point) time.Duration) time.Duration {
		v := make([]time.Duration, len(ps))
		for i, q := range ps {
			v[i] = get(q)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	p.Rate, p.Errors = 0, 0
	for _, q := range ps {
		p.Rate += q.Rate / float64(len(ps))
		p.Errors += q.Errors
	}
	p.P50 = med(func(q report.Point) time.Duration { return q.P50 })
	p.P99 = med(func(q report.Point) time.Duration { return q.P99 })
	p.P999 = med(func(q report.Point) time.Duration { return q.P999 })
	return p
}

// coldOnly is -scenarios cold: phase one's fleet, the small set seeded
// and settled, then measureCold. It writes no report; it prints the points
// and the cold_p99_growth_10m headline.
func coldOnly(ctx context.Context, c config, work string) error {
	f, _, err := fleetOne(ctx, c, work)
	if err != nil {
		return err
	}
	defer f.Stop()
	dsn := f.Primary.DSN(localfleet.Database)
	say("seeding %d links with COPY", c.linksSmall)
	first, last, err := seed.Links(ctx, dsn, c.linksSmall)
	if err != nil {
		return err
	}
	if err := seed.Settle(ctx, dsn); err != nil {
		return err
	}
	cr, err := measureCold(ctx, c, f, work, first, last)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(cr.res.Table().Markdown())
	fmt.Println()
	small, large := human(c.linksSmall), human(c.links)
	fmt.Print(openTable(cr.open, small, large).Markdown())
	fmt.Println()
	fmt.Print(openGrowth(cr.open, small, large).Markdown())
	if h, ok := coldGrowth(cr.open); ok {
		report.PrintHeadlines(os.Stdout, h)
	}
	return nil
}

// prepareEvidence installs the extensions coldEvidence reads the replica
// with (they replicate).
func prepareEvidence(ctx context.Context, primaryDSN string) error {
	conn, err := pgx.Connect(ctx, primaryDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect; CREATE EXTENSION IF NOT EXISTS pg_visibility`)
	return err
}

// blocks are the replica's buffer counters: the database's, and the links
// table's and its indexes'.
type blocks struct {
	hit, read, heapHit, heapRead, idxHit, idxRead int64
}

func replicaBlocks(ctx context.Context, dsn string) (blocks, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return blocks{}, err
	}
	defer conn.Close(context.Background())
	var b blocks
	err = conn.QueryRow(ctx, `SELECT d.blks_hit, d.blks_read, coalesce(t.heap_blks_hit, 0), coalesce(t.heap_blks_read, 0),
		coalesce(t.idx_blks_hit, 0), coalesce(t.idx_blks_read, 0)
		FROM pg_stat_database d, pg_statio_user_tables t WHERE d.datname = current_database() AND t.relname = 'links'`).
		Scan(&b.hit, &b.read, &b.heapHit, &b.heapRead, &b.idxHit, &b.idxRead)
	return b, err
}

func (b blocks) minus(a blocks) string {
	share := func(hit, read int64) string {
		if hit+read == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(hit)/float64(hit+read))
	}
	return fmt.Sprintf("blks_hit %d blks_read %d (hit %s); links heap hit %d read %d (hit %s), index hit %d read %d (hit %s)",
		b.hit-a.hit, b.read-a.read, share(b.hit-a.hit, b.read-a.read),
		b.heapHit-a.heapHit, b.heapRead-a.heapRead, share(b.heapHit-a.heapHit, b.heapRead-a.heapRead),
		b.idxHit-a.idxHit, b.idxRead-a.idxRead, share(b.idxHit-a.idxHit, b.idxRead-a.idxRead))
}

// coldEvidence prints what a cold lookup costs the replica with the links
// it has: the table's and its indexes' sizes beside shared_buffers, the
// primary key's B-tree depth, how much of the table the visibility map
// marks all-visible, and EXPLAIN (ANALYZE, BUFFERS) of the proxy's lookup
// query for a batch of 16 random ids of [lo, hi].
func coldEvidence(ctx context.Context, dsn, label string, lo, hi int64) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var sb, heap, idx string
	var heapPages, idxPages, level, allVisible, allFrozen int64
	err = conn.QueryRow(ctx, `SELECT current_setting('shared_buffers'), pg_size_pretty(pg_relation_size('links')), pg_relation_size('links') / 8192,
		pg_size_pretty(pg_indexes_size('links')), pg_relation_size('links_pkey') / 8192, (SELECT level FROM bt_metap('links_pkey')),
		v.all_visible, v.all_frozen FROM pg_visibility_map_summary('links') v`).
		Scan(&sb, &heap, &heapPages, &idx, &idxPages, &level, &allVisible, &allFrozen)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	say("evidence, %s: shared_buffers %s; links heap %s (%d pages, %d all-visible, %d all-frozen), its indexes %s, links_pkey %d pages, B-tree level %d (root above %d levels)",
		label, sb, heap, heapPages, allVisible, allFrozen, idx, idxPages, level, level)
	rng := rand.New(rand.NewPCG(uint64(hi), 3))
	for range 2 {
		ids := make([]string, 16)
		for i := range ids {
			ids[i] = strconv.FormatInt(lo+rng.Int64N(hi-lo+1), 10)
		}
		rows, err := conn.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) SELECT id, target, redirect_type, disabled, expires_at, forward_query, rules, coalesce(password_hash, '')
			FROM links WHERE id = ANY('{`+strings.Join(ids, ",")+`}'::bigint[])`)
		if err != nil {
			return fmt.Errorf("evidence: %w", err)
		}
		var plan []string
		for rows.Next() {
			var l string
			rows.Scan(&l)
			plan = append(plan, strings.TrimSpace(l))
		}
		rows.Close()
		say("evidence, %s: EXPLAIN (ANALYZE, BUFFERS), 16 random ids: %s", label, strings.Join(plan, " | "))
	}
	return nil
}
