package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"shortfleet/bench/internal/plot"
	"shortfleet/bench/internal/report"
)

// chart is one SVG of the report.
type chart struct {
	file string // name under the results folder, after the date
	alt  string
	bars plot.Bars
}

func charts(c config, o *outcome) []chart {
	rate := func(p report.Point) float64 { return p.Rate }
	p99 := func(p report.Point) float64 { return report.Millis(p.P99) }
	redirects := []string{sNginx, sCached, sMixedRedir, sDirect, sBalanced, sColdSmall, sColdLarge}
	var lag report.Results
	for _, n := range c.conns {
		l := o.lag[n]
		lag = append(lag,
			report.Point{Scenario: "p50", Conns: n, P99: l.p50},
			report.Point{Scenario: "p99", Conns: n, P99: l.p99},
			report.Point{Scenario: "max", Conns: n, P99: l.max})
	}
	return []chart{
		{"redirects-throughput.svg", "redirect throughput per scenario and connection count",
			o.res.Chart("Redirects: throughput", "requests/s", redirects, c.conns, rate)},
		{"redirects-p99.svg", "redirect p99 latency per scenario and connection count",
			o.res.Chart("Redirects: p99 latency", "ms", redirects, c.conns, p99)},
		{"creation-throughput.svg", "creation throughput beside pgbench",
			o.res.Chart("Link creation: throughput", "per second", []string{sPgInsert, sCreate, sMixedCreate}, c.conns, rate)},
		{"creation-p99.svg", "creation p99 latency",
			o.res.Chart("Link creation: p99 latency", "ms", []string{sCreate, sMixedCreate}, c.conns, p99)},
		{"replica-lag.svg", "replica lag under creation load",
			lag.Chart("Replica lag under creation load (time behind)", "ms", []string{"p50", "p99", "max"}, c.conns, p99)},
	}
}

// middle is the connection count the short tables show.
func middle(conns []int) int { return conns[len(conns)/2] }

// commandLine is the flags this run was given, as make passes them.
func commandLine() string {
	return "go run ./bench/cmd/report " + strings.Join(os.Args[1:], " ")
}

func body(c config, o *outcome, date, prefix string, cs []chart) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, by `make bench` (`%s`), in %s. ", time.Now().UTC().Format("2006-01-02 15:04 UTC"), report.Machine(), commandLine(), time.Since(start).Round(time.Second))
	fmt.Fprintf(&b, "One %s run per point after a %s warm-up, so figures carry the noise of single runs; ratios are taken within the run. ", c.dur, c.warm)
	b.WriteString("wrk runs one thread on the same machine, taking a share of the two cores in every scenario alike.\n\n")
	for _, ch := range cs {
		fmt.Fprintf(&b, "![%s](%s%s-%s)\n", ch.alt, prefix, date, ch.file)
	}
	b.WriteString("\n")
	b.WriteString(o.res.Table().Markdown())
	b.WriteString("\n")
	b.WriteString("Rate ratio: the scenario's rate over its baseline's at the same connection count (higher is better); p99 ratio: its p99 over the baseline's (lower is better).\n\n")

	b.WriteString("**How cost grows with work**\n\n")
	grow := report.Table{Header: []string{"measure", "conns", "smaller", "larger", "ratio larger / smaller"}}
	small, large := human(c.linksSmall), human(c.links)
	for _, n := range c.conns {
		ps, ok1 := o.res.Find(sColdSmall, n)
		pl, ok2 := o.res.Find(sColdLarge, n)
		if !ok1 || !ok2 {
			continue
		}
		grow.Rows = append(grow.Rows,
			[]string{fmt.Sprintf("cold redirects/s, %s vs %s links", small, large), strconv.Itoa(n), fmt.Sprintf("%.0f", ps.Rate), fmt.Sprintf("%.0f", pl.Rate), "**" + report.Ratio(pl.Rate, ps.Rate) + "**"},
			[]string{fmt.Sprintf("cold redirect p99, %s vs %s links", small, large), strconv.Itoa(n), report.Ms(ps.P99), report.Ms(pl.P99), report.Ratio(float64(pl.P99), float64(ps.P99))})
	}
	grow.Rows = append(grow.Rows, []string{fmt.Sprintf("mapreduce -once wall time, %s vs %s records", human(o.win1.Records), human(o.win10.Records)), "",
		fmt.Sprintf("%.1f s", o.ingest1.Took.Seconds()), fmt.Sprintf("%.1f s", o.ingest10.Took.Seconds()),
		"**" + report.Ratio(o.ingest10.Took.Seconds(), o.ingest1.Took.Seconds()) + "** (records: " + report.Ratio(float64(o.win10.Records), float64(o.win1.Records)) + ")"})
	for _, n := range c.conns {
		pd, ok1 := o.res.Find(sDirect, n)
		pb, ok2 := o.res.Find(sBalanced, n)
		if ok1 && ok2 {
			grow.Rows = append(grow.Rows, []string{fmt.Sprintf("cached redirects/s, one proxy vs HAProxy over %d", c.proxies), strconv.Itoa(n),
				fmt.Sprintf("%.0f", pd.Rate), fmt.Sprintf("%.0f", pb.Rate), "**" + report.Ratio(pb.Rate, pd.Rate) + "**"})
		}
	}
	b.WriteString(grow.Markdown())
	b.WriteString("\nThe cold p99 rows above are closed loop (wrk) and stand as context only: on the 2 shared cores they are the run queue, not the lookups. The headline `cold_p99_growth_10m` is the open loop's, below.\n")
	fmt.Fprintf(&b, "\n**Cold redirects, open loop** (the `cold_p99_growth_10m` headline: the p99 ratio, large set over small, at the highest rate)\n\n")
	b.WriteString(openGrowth(o.open, small, large).Markdown())
	b.WriteString("\n")
	b.WriteString(openTable(o.open, small, large).Markdown())
	fmt.Fprintf(&b, "\nThe %d proxies behind HAProxy share the same two cores as everything else: that scenario measures the balancer's fan-out and its cost per request, not more throughput. ", c.proxies)
	b.WriteString("On bare metal each proxy has a host of its own.\n\n")

	b.WriteString("**Replica lag under creation load**\n\n")
	lt := report.Table{Header: []string{"creation conns", "creations/s", "lag p50", "lag p99", "lag max", "WAL behind p99", "WAL behind max", "samples with nothing outstanding", "samples"}}
	for _, n := range c.conns {
		l := o.lag[n]
		p, _ := o.res.Find(sCreate, n)
		lt.Rows = append(lt.Rows, []string{strconv.Itoa(n), fmt.Sprintf("%.0f", p.Rate), report.Ms(l.p50), report.Ms(l.p99), report.Ms(l.max),
			fmt.Sprintf("%d B", l.bytesP99), fmt.Sprintf("%d B", l.bytesMax), fmt.Sprintf("%.0f%%", 100*l.replayedWithinOneMs), strconv.Itoa(l.samples)})
	}
	b.WriteString(lt.Markdown())
	b.WriteString("\nSampled every 50 ms during each creation run: the primary's WAL position, then the replica's replay position and the age of the last transaction it replayed (`clock_timestamp() - pg_last_xact_replay_timestamp()`, which includes up to one sampling query's time).\n\n")

	med, mx := durs(o.takedowns)
	fmt.Fprintf(&b, "**Takedown**: from `UPDATE links SET disabled = true` committing on the primary to every one of the %d proxies answering 410 for a link each had cached, over %d links: median **%s**, max %s (replication, then each proxy's 100 ms change-feed poll).\n\n",
		c.proxies, len(o.takedowns), med.Round(time.Millisecond), mx.Round(time.Millisecond))

	fl := o.flood
	fmt.Fprintf(&b, "**Random codes**: `RANDOM_CODES=1` (7 random base62 characters, codes nobody issued) at 64 connections against the fleet's proxy for %s: **%.0f requests/s**, p99 %s, %d errors other than the 404s; by the proxy's counters %.0f answers 404 of %.0f sent, **%.0f replica lookups, %.0f replica queries, %.0f asks of the primary**, %.0f refused by the recent-window rule before any database.\n\n",
		c.dur, fl.point.Rate, report.Ms(fl.point.P99), fl.point.Errors, fl.notFound, fl.requests, fl.replicaLookups, fl.batches, fl.primary, fl.windowRejections)

	fmt.Fprintf(&b, "**Ingest**: windows of five minutes from 16 proxies, 5 segments each, written as a proxy writes them from `logfmt/logfmttest`'s records (links Zipf-skewed over 1 M, crawlers, referrers, languages, 404s): 1x %d records in %d segments (%.0f MB), 10x %d records in %d segments (%.0f MB), served by the real proxy admin API on loopback; the real `bin/mapreduce -once` pulls, aggregates and commits them to the fleet's primary. 1x: %s (%s); 10x: %s (%s). The baseline decodes the 10x window's segments, read into memory first, with the Arrow reader on every core.\n\n",
		o.win1.Records, o.win1.Segments, float64(o.win1.Bytes)/1e6, o.win10.Records, o.win10.Segments, float64(o.win10.Bytes)/1e6,
		o.ingest1.Field("took"), o.ingest1.Stages, o.ingest10.Field("took"), o.ingest10.Stages)

	b.WriteString("**Setup**\n\n")
	fmt.Fprintf(&b, "- Redirects: `%s`, the URL and codes file per scenario; requests carry real browser and crawler user agents, referrers and Accept-Language.\n", o.wrkCmd)
	fmt.Fprintf(&b, "- Cached: Zipf(%g) over the first %s links, against the fleet's proxy (cache, full logging) and nginx alike; %s %.0f of the cached runs' lookups went to the replica. Cold: proxies on the same host and replica with `-cache-bytes 1` and %d lookup workers, so every request is a replica lookup (%.1f lookups shared each replica query in the small-set runs): one reads the fleet's database (the small set), one a database of its own on the same primary holding the large set, so both go through the same replica and its shared_buffers; codes uniform over the links, or over a uniform sample of %s of them where there are more (wrk's Lua holds a file of 10 M codes only after a minute and 700 MB). Both sets are settled (`VACUUM (FREEZE, ANALYZE)`) and the replica's buffers prewarmed with them (`pg_prewarm`), as on a replica that has served a while. Each closed-loop cold point is %d rounds of %s, the two sets interleaved in alternating order so both see the same moments of the shared machine; its rate is the rounds' mean, its latencies their medians. Before wrk, the open loop (bench/internal/fixedrate): %s requests a second to each cold proxy, each timed from when it was due, each a link of its set asked for the first time (drawn without replacement), over keep-alive connections (at most 64) with a browser's headers; %d rounds at each rate of %s, the first %s of each not counted, the sets interleaved in alternating order; each figure the median over the rounds.\n",
		c.zipf, human(min(c.linksSmall, int64(c.sample))), cachedWarmup(c), o.cachedMisses, c.dbConns, o.perBatch, human(int64(c.sample)), max(c.coldRounds, 1), c.dur/time.Duration(max(c.coldRounds, 1)),
		rateList(c.coldRates), c.coldOpenRounds, c.coldOpenDur, c.coldOpenWarm)
	fmt.Fprintf(&b, "- `pgbench -S`: `%s` on the proxy's replica, scale 10, as many clients as the cold proxy's lookup workers; it runs once and stands beside every connection count.\n", o.pgCmd)
	b.WriteString("- Creation: `bench/wrk/create.lua` (`POST /api/links` with an API key) against the primary app; baseline `pgbench -n -f insert.sql` with one INSERT a transaction into a copy of the links table, as many clients (its -T is lengthened by 100 ms a client, since pgbench opens its connections one by one inside it; its tps leaves that time out). Mixed: the redirect and creation runs at once, each at the connection count shown.\n")
	fmt.Fprintf(&b, "- Seeding (`bench/internal/seed`, COPY in chunks on 2 connections, then `VACUUM (FREEZE, ANALYZE) links`, which a long-running fleet's autovacuum would have done long before: without it the primary's autovacuum runs on the loaded table under the cold runs): %s links in %s, replicas caught up %s later; the large set, %s links, in %s, replicas caught up %s later.\n",
		small, o.seedSmall.Round(time.Second), o.replaySmall.Round(time.Millisecond), human(c.links), o.seedLarge.Round(time.Second), o.replayLarge.Round(time.Millisecond))
	fmt.Fprintf(&b, "- Phase two: a fresh fleet of %d proxy hosts (each with its own streaming replica) behind HAProxy (the shared settings in `provisioning/settings/haproxy.json`), %s links, every proxy's cache warmed through the balancer first (the one proxy measured alone also asked for every code once, with -fill-cache).\n",
		c.proxies, human(min(c.linksSmall, 100_000)))
	return b.String()
}

// latest is the short table of the top README: the middle connection
// count of every scenario, and the figures without one.
func latest(c config, o *outcome, date string) string {
	n := middle(c.conns)
	t := report.Table{Header: []string{"scenario", "rate", "p99", "beside", "ratio"}}
	for _, p := range o.res {
		if p.Conns != 0 && p.Conns != n {
			continue
		}
		row := []string{p.Scenario, fmt.Sprintf("%.0f %s", p.Rate, p.Unit), report.Ms(p.P99), "(baseline)", ""}
		if bp, ok := o.res.BaselineOf(p); ok {
			row[3], row[4] = bp.Scenario, "**"+report.Ratio(p.Rate, bp.Rate)+"**"
		}
		t.Rows = append(t.Rows, row)
	}
	med, _ := durs(o.takedowns)
	return fmt.Sprintf("From `make bench` on %s (%s), %d connections where it applies; the full report with charts, every connection count and the scaling ratios is [bench/results/%s-report.md](bench/results/%s-report.md).\n\n%s\nA disabled link stopped redirecting on all %d proxies in a median of %s.\n",
		date, report.Machine(), n, date, date, t.Markdown(), c.proxies, med.Round(time.Millisecond))
}

func write(c config, o *outcome) error {
	date := report.Today()
	cs := charts(c, o)
	for _, ch := range cs {
		svg, err := ch.bars.SVG()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(c.results, date+"-"+ch.file), []byte(svg), 0o644); err != nil {
			return err
		}
	}
	full := body(c, o, date, "", cs)
	fmt.Println()
	fmt.Println(full)
	if err := os.WriteFile(filepath.Join(c.results, date+"-report.md"), []byte("# Benchmark report, "+date+"\n\n"+full), 0o644); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(c.readme), c.results)
	if err != nil {
		return err
	}
	if err := report.ReplaceSection(c.readme, "bench-report", body(c, o, date, rel+"/", cs)); err != nil {
		return err
	}
	if err := report.ReplaceSection(c.top, "bench-latest", latest(c, o, date)); err != nil {
		return err
	}
	report.PrintHeadlines(os.Stdout, headlines(c, o)...)
	return nil
}

// headlines are the ratio of every scenario to its baseline at the middle
// connection count, named after the scenario, and the takedown median.
func headlines(c config, o *outcome) []report.Headline {
	n := middle(c.conns)
	var hs []report.Headline
	for _, p := range o.res {
		if p.Conns != 0 && p.Conns != n {
			continue
		}
		if bp, ok := o.res.BaselineOf(p); ok && bp.Rate > 0 {
			hs = append(hs, report.Headline{Name: report.Slug(p.Scenario) + "_ratio", Value: p.Rate / bp.Rate})
		}
	}
	if h, ok := coldGrowth(o.open); ok {
		hs = append(hs, h)
	}
	med, _ := durs(o.takedowns)
	return append(hs, report.Headline{Name: "takedown_median_ms", Value: float64(med.Microseconds()) / 1000})
}

// human writes a count short: 10000000 as "10 M".
func human(n int64) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return strings.TrimSuffix(strconv.FormatFloat(float64(n)/1e6, 'f', 1, 64), ".0") + " M"
	case n >= 1000 && n%100 == 0:
		return strings.TrimSuffix(strconv.FormatFloat(float64(n)/1e3, 'f', 1, 64), ".0") + " k"
	}
	return strconv.FormatInt(n, 10)
}

// cachedWarmup says how the cached proxy was warmed.
func cachedWarmup(c config) string {
	if c.fillCache {
		return "the proxy was first asked for each of those links once (`-fill-cache`, as a proxy serving them for a while holds them; nginx has nothing to miss), then warmed with the same Zipf draw;"
	}
	return "the proxy was warmed with the same Zipf draw only (`-fill-cache=false`): the tail's first requests miss during the measured runs;"
}

// rateList writes rates as "600 and 2000".
func rateList(rates []int) string {
	var s []string
	for _, r := range rates {
		s = append(s, strconv.Itoa(r))
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
