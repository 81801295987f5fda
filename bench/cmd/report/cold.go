package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/bench/internal/baseline"
	"shortfleet/bench/internal/report"
	"shortfleet/bench/internal/seed"
	"shortfleet/provisioning/localfleet"
)

// coldProxy is a proxy on the fleet's proxy host and replica with a cache
// of one byte: every request it answers is a replica lookup.
type coldProxy struct {
	cmd       *exec.Cmd
	url       string
	adminHost string
}

// startCold starts a cold proxy from the binary bin (the fleet's when
// empty) listening on port, its admin API on port+1000.
func startCold(ctx context.Context, c config, f *localfleet.Fleet, work, name, bin string, port int) (*coldProxy, error) {
	host := f.ProxyHost(0)
	cmd := f.Command(ctx, "proxy", "-id", name,
		"-listen", net.JoinHostPort(host, strconv.Itoa(port)), "-admin-listen", net.JoinHostPort(host, strconv.Itoa(port+1000)),
		"-log-dir", filepath.Join(work, name), "-cache-bytes", "1", "-lookup-workers", strconv.Itoa(c.dbConns))
	if bin != "" {
		cmd.Path, cmd.Args[0] = bin, bin
	}
	cmd.Env = append(cmd.Env, "SHORTFLEET_REPLICA_DSN="+f.Replicas[0].DSN(localfleet.Database)+"&pool_max_conns="+strconv.Itoa(c.dbConns+1),
		"SHORTFLEET_PRIMARY_DSN="+f.Primary.DSN(localfleet.Database))
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

// coldGrowth is the headline of the cold scenarios: p99 with the large
// set over p99 with the small one, at 64 connections (or the middle count
// when 64 was not run); false when either is missing.
func coldGrowth(c config, res report.Results) (report.Headline, bool) {
	n := middle(c.conns)
	for _, k := range c.conns {
		if k == 64 {
			n = 64
		}
	}
	ps, ok1 := res.Find(sColdSmall, n)
	pl, ok2 := res.Find(sColdLarge, n)
	if !ok1 || !ok2 || ps.P99 <= 0 {
		return report.Headline{}, false
	}
	return report.Headline{Name: "cold_p99_growth_10m", Value: float64(pl.P99) / float64(ps.P99)}, true
}

// coldOnly is -scenarios cold: the fleet of phase one, the cold proxy,
// the small set and the large set, with what the replica did for each
// (coldEvidence). It writes no report; it prints the points and the
// cold_p99_growth_10m headline.
func coldOnly(ctx context.Context, c config, work string) error {
	f, cd, err := fleetOne(ctx, c, work)
	if err != nil {
		return err
	}
	defer f.Stop()
	dsn := f.Primary.DSN(localfleet.Database)
	replica := f.Replicas[0].DSN(localfleet.Database)
	if err := prepareEvidence(ctx, dsn); err != nil {
		return err
	}
	say("seeding %d links with COPY", c.linksSmall)
	first, last, err := seed.Links(ctx, dsn, c.linksSmall)
	if err != nil {
		return err
	}
	if _, err := seed.WaitReplayed(ctx, dsn, []string{replica}); err != nil {
		return err
	}
	small := filepath.Join(work, "small.txt")
	if err := seed.WriteSample(small, cd, first, last, c.sample, rand.New(rand.NewPCG(1, 1))); err != nil {
		return err
	}
	cold, err := startCold(ctx, c, f, work, "proxy-cold", "", 8082)
	if err != nil {
		return err
	}
	defer cold.stop()
	var base *coldProxy
	if c.coldBaseline != "" {
		if base, err = startCold(ctx, c, f, work, "proxy-cold-base", c.coldBaseline, 8083); err != nil {
			return err
		}
		defer base.stop()
	}
	r := runner{c: c, ctx: ctx}
	var res report.Results
	set := func(name, codesFile string, lo, hi int64) error {
		for _, p := range []*coldProxy{cold, base} {
			if p != nil {
				if err := r.warmup(r.opts(p.url, "bench/wrk/redirects.lua", 64, "CODES="+codesFile)); err != nil {
					return err
				}
			}
		}
		if err := coldEvidence(ctx, replica, name, lo, hi); err != nil {
			return err
		}
		for _, n := range c.conns {
			for _, p := range []*coldProxy{base, cold} {
				if p == nil {
					continue
				}
				label := name
				if p == base {
					label += " (baseline binary)"
				}
				s0, _ := replicaBlocks(ctx, replica)
				pt, err := r.measure(label, "", "requests/s", r.opts(p.url, "bench/wrk/redirects.lua", n, "CODES="+codesFile))
				if err != nil {
					return err
				}
				s1, _ := replicaBlocks(ctx, replica)
				say("  %s, %d conns: %.0f requests/s, p50 %s, p99 %s, p99.9 %s, errors %d; replica: %s", label, n, pt.Rate,
					report.Ms(pt.P50), report.Ms(pt.P99), report.Ms(pt.P999), pt.Errors, s1.minus(s0))
				if p == cold && (name == sColdSmall || name == sColdLarge) {
					pt.Scenario = name
					res = append(res, pt)
				}
			}
		}
		return nil
	}
	// settled measures a set as the driver publishes it, after
	// seed.Settle; with -cold-unsettled, first as the load left it.
	settled := func(name, codesFile string, lo, hi int64) error {
		if c.coldUnsettled {
			if err := set(name+" (as seeded)", codesFile, lo, hi); err != nil {
				return err
			}
		}
		t := time.Now()
		if err := seed.Settle(ctx, dsn); err != nil {
			return err
		}
		replay, err := seed.WaitReplayed(ctx, dsn, []string{replica})
		if err != nil {
			return err
		}
		say("VACUUM (FREEZE, ANALYZE) links in %s, replayed %s later", time.Since(t).Round(time.Millisecond), replay.Round(time.Millisecond))
		return set(name, codesFile, lo, hi)
	}
	if err := settled(sColdSmall, small, first, last); err != nil {
		return err
	}
	if c.links > c.linksSmall {
		say("seeding %d more links with COPY (%d in all)", c.links-c.linksSmall, c.links)
		t := time.Now()
		_, lastL, err := seed.Links(ctx, dsn, c.links-c.linksSmall)
		if err != nil {
			return err
		}
		took := time.Since(t)
		replay, err := seed.WaitReplayed(ctx, dsn, []string{replica})
		if err != nil {
			return err
		}
		say("seeded in %s, replayed %s later", took.Round(time.Second), replay.Round(time.Millisecond))
		large := filepath.Join(work, "large.txt")
		if err := seed.WriteSample(large, cd, first, lastL, c.sample, rand.New(rand.NewPCG(2, 2))); err != nil {
			return err
		}
		if err := settled(sColdLarge, large, first, lastL); err != nil {
			return err
		}
	}
	fmt.Println()
	fmt.Print(res.Table().Markdown())
	if h, ok := coldGrowth(c, res); ok {
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
