// Command proxybench measures the proxy beside its baselines, in one run on
// one machine, with the same wrk settings for every HTTP scenario:
//
//   - cached redirects with full logging, vs nginx answering `return 302`
//     with a gzip-buffered combined access log;
//   - the same proxy with logging on vs logging off;
//   - uncached lookups uniform over N links (default 1,000,000), vs
//     `pgbench -S` on the same replica with as many connections as the
//     proxy's replica pool;
//   - bytes on disk per logged request, beside nginx's gzip log: the
//     logging proxy is stopped with SIGTERM, which seals its last segment,
//     and its manifest's bytes are divided by its rows;
//   - fasthttp's floor: a bare fasthttp server (this program with
//     -serve-bare) answering the same 302 with the proxy's server settings
//     and nothing else, beside nginx: what Go and fasthttp cost alone;
//   - with -compare-bin, the same cached scenario on another build's proxy,
//     in the same rounds (a change beside its baseline);
//   - memory: a proxy with -rss-cache-bytes asked for every seeded link
//     once, its VmRSS before and after, and the Go benchmarks' heap bytes
//     per cached link and per open segment row.
//
// Server CPU is split into its kernel share (/proc/PID/stat stime).
//
// It writes bench/results/<date>-proxy.md and the table in bench/README.md.
//
// Its output ends with one "bench: NAME VALUE" line a headline figure:
// proxy_vs_nginx, logging_on_vs_off, rules_vs_plain_rate,
// uncached_vs_pgbench, sealed_bytes_per_request, takedown_median_ms,
// fasthttp_floor_vs_nginx, cache_bytes_per_link, segment_bytes_per_row,
// proxy_rss_mib_idle, proxy_rss_mib_cache_filled (the memory ones unless
// -memory=false), proxy_vs_compare_build (with -compare-bin).
//
//	make bench-proxy    (or: go run ./bench/cmd/proxybench -bin bin)
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/bench/internal/baseline"
	"shortfleet/bench/internal/metrics"
	"shortfleet/bench/internal/report"
	"shortfleet/bench/internal/seed"
	"shortfleet/bench/internal/takedown"
	"shortfleet/bench/internal/wrk"
	"shortfleet/logfmt"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/sql/codes"
)

func main() {
	var (
		dur      = flag.Duration("duration", 10*time.Second, "length of each wrk run")
		conns    = flag.Int("connections", 64, "wrk connections")
		threads  = flag.Int("threads", 1, "wrk threads")
		nLinks   = flag.Int64("links", 1_000_000, "links seeded for the uncached scenario")
		hot      = flag.Int64("hot", 1000, "links the cached scenarios draw from")
		dbConns  = flag.Int("db-connections", 4, "replica connections the proxy's lookups use (-lookup-workers), and pgbench's client count")
		rounds   = flag.Int("rounds", 3, "interleaved rounds of every scenario; the median is reported")
		bin      = flag.String("bin", "bin", "folder with the primary, proxy and mapreduce binaries")
		results  = flag.String("results", "bench/results", "folder for the dated report")
		readme   = flag.String("readme", "bench/README.md", "README whose proxy-bench section is rewritten")
		keepWork = flag.Bool("keep", false, "keep the work folder")
		profile  = flag.Bool("profile", false, "save a CPU and an allocation profile of each proxy scenario in the work folder (implies -keep)")
		compare  = flag.String("compare-bin", "", "folder with another build's proxy binary: it runs the cached, full-logging scenario too, in the same rounds (a change beside its baseline)")
		rssBound = flag.Int64("rss-cache-bytes", 128<<20, "-cache-bytes of the proxy whose RSS is read with every seeded link asked once (the cache full when the links weigh more)")
		memFlag  = flag.Bool("memory", true, "measure the proxy's memory (RSS with its cache filled, bytes per link and per row); false: a quicker run without the memory figures")
		bare     = flag.String("serve-bare", "", "internal: serve a bare fasthttp 302 on this address (the floor scenario's server)")
	)
	flag.Parse()
	if *bare != "" {
		serveBare(*bare)
		return
	}
	compareBin = *compare
	rssCacheBytes, measureMem = *rssBound, *memFlag
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	profileDir = ""
	if *profile {
		*keepWork = true
		profileDir = "on"
	}
	if err := run(logger, *dur, *conns, *threads, *nLinks, *hot, *dbConns, *rounds, *bin, *results, *readme, *keepWork); err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(1)
	}
}

// profileDir is set to the work folder when profiles are wanted.
var profileDir string

// compareBin is -compare-bin; rssCacheBytes is -rss-cache-bytes.
var (
	compareBin    string
	rssCacheBytes int64
	measureMem    bool
)

// captureProfile saves a CPU profile of the proxy whose admin listener is
// adminURL, taken over d, to path.
func captureProfile(adminURL, token, path string, d time.Duration) {
	for _, p := range []struct{ url, out string }{
		{fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), path},
		// Allocations since the start, sampled: read beside the CPU
		// profile (go tool pprof -sample_index=alloc_space).
		{"/debug/pprof/allocs", strings.TrimSuffix(path, ".pprof") + ".allocs.pprof"},
	} {
		if err := metrics.SaveProfile(adminURL, token, p.url, p.out); err != nil {
			say("profile: %v", err)
		}
	}
}

func say(format string, args ...any) { fmt.Printf("proxybench: "+format+"\n", args...) }

func run(logger *slog.Logger, dur time.Duration, conns, threads int, nLinks, hot int64, dbConns, rounds int, bin, results, readme string, keep bool) error {
	ctx := context.Background()
	work, cleanup, err := report.WorkDir("bench", keep)
	if err != nil {
		return err
	}
	defer cleanup()
	if profileDir != "" {
		profileDir = work
	}
	binAbs, _ := filepath.Abs(bin)
	subnet, err := localfleet.FreeSubnet()
	if err != nil {
		return err
	}
	say("starting a 1-proxy fleet on %s.x (work folder %s)", subnet, work)
	f, err := localfleet.Start(ctx, localfleet.Config{
		StateDir: filepath.Join(work, "fleet"), BinDir: binAbs, Proxies: 1, Subnet: subnet, Schedule: "@every 1000h",
		ProxyCountries: true, // the rules scenario has a country rule
	}, logger)
	if err != nil {
		return err
	}
	defer f.Stop()

	t := time.Now()
	first, last, err := seed.Links(ctx, f.Primary.DSN(localfleet.Database), nLinks)
	if err != nil {
		return err
	}
	say("seeded %d links with COPY in %s", nLinks, time.Since(t).Round(time.Millisecond))
	key, _ := hex.DecodeString(f.Secrets.CodeKey)
	codec, _ := codes.New(key)
	allCodes, hotCodes := filepath.Join(work, "codes.txt"), filepath.Join(work, "hot.txt")
	if err := seed.WriteCodes(allCodes, codec, first, last); err != nil {
		return err
	}
	if err := seed.WriteCodes(hotCodes, codec, first, first+hot-1); err != nil {
		return err
	}
	// The next hot links get three redirect rules (issue 21), as a link
	// owner would set them: by device, language and country. wrk's mix of
	// agents and languages matches some (an iPhone the first, French the
	// second); the loopback client has no country, so the others try all
	// three.
	rulesCodes := filepath.Join(work, "rules.txt")
	if err := seed.WriteCodes(rulesCodes, codec, first+hot, first+2*hot-1); err != nil {
		return err
	}
	if err := setRules(ctx, f.Primary.DSN(localfleet.Database), first+hot, first+2*hot-1); err != nil {
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
	if err := f.WaitReplicas(ctx); err != nil {
		return err
	}
	say("replica has replayed everything")

	// Two more proxies on the same host and replica: logging off, and a
	// cache too small to hold anything.
	host := f.ProxyHost(0)
	// The lookup workers' connections, plus one for the poller.
	replicaDSN := f.Replicas[0].DSN(localfleet.Database) + "&pool_max_conns=" + strconv.Itoa(dbConns+1)
	pids := map[string]int{}
	var extraFrom func(binDir, name string, port int, args ...string) (func(), error)
	extra := func(name string, port int, args ...string) (func(), error) {
		return extraFrom(binAbs, name, port, args...)
	}
	extraFrom = func(binDir, name string, port int, args ...string) (func(), error) {
		cmd := f.Command(ctx, "proxy", append([]string{"-id", name,
			"-listen", net.JoinHostPort(host, strconv.Itoa(port)),
			"-admin-listen", net.JoinHostPort(host, strconv.Itoa(port+1000)),
			"-log-dir", filepath.Join(work, name)}, args...)...)
		cmd.Path = filepath.Join(binDir, "proxy")
		cmd.Env = append(cmd.Env, "SHORTFLEET_REPLICA_DSN="+replicaDSN, "SHORTFLEET_PRIMARY_DSN="+f.Primary.DSN(localfleet.Database))
		out, _ := os.Create(filepath.Join(work, name+".log"))
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		if err := baseline.WaitListening(net.JoinHostPort(host, strconv.Itoa(port)), 30*time.Second); err != nil {
			return nil, err
		}
		pids[name] = cmd.Process.Pid
		return func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }, nil
	}
	stopNoLog, err := extra("proxy-nolog", 8081, "-no-log")
	if err != nil {
		return err
	}
	defer stopNoLog()
	stopUncached, err := extra("proxy-uncached", 8082, "-cache-bytes", "1", "-lookup-workers", strconv.Itoa(dbConns))
	if err != nil {
		return err
	}
	defer stopUncached()
	// The same proxy from another build (-compare-bin), logging fully.
	compareURL := "http://" + net.JoinHostPort(host, "8083")
	if compareBin != "" {
		cb, _ := filepath.Abs(compareBin)
		stop, err := extraFrom(cb, "proxy-compare", 8083)
		if err != nil {
			return err
		}
		defer stop()
	}
	// fasthttp's floor: a bare fasthttp server (this program again, with
	// -serve-bare) answering every request with the same 302 and headers,
	// logging nothing, with the proxy's server settings.
	bareAddr := net.JoinHostPort(host, "8084")
	bareCmd := exec.CommandContext(ctx, os.Args[0], "-serve-bare", bareAddr)
	bareCmd.Stdout, bareCmd.Stderr = os.Stderr, os.Stderr
	if err := bareCmd.Start(); err != nil {
		return err
	}
	defer func() { bareCmd.Process.Signal(os.Interrupt); bareCmd.Wait() }()
	if err := baseline.WaitListening(bareAddr, 30*time.Second); err != nil {
		return err
	}
	ng, err := baseline.StartNginx(filepath.Join(work, "nginx"), net.JoinHostPort(subnet+".5", "8090"))
	if err != nil {
		return err
	}
	defer ng.Stop()

	script := "bench/wrk/redirects.lua" // run from the repository's root, as make does
	opts := func(url, codesFile string) wrk.Options {
		return wrk.Options{URL: url, Script: script, Threads: threads, Connections: conns, Duration: dur, Env: []string{"CODES=" + codesFile}}
	}
	logged := "http://" + net.JoinHostPort(host, strconv.Itoa(localfleet.PortRedirect))
	noLog := "http://" + net.JoinHostPort(host, "8081")
	uncached := "http://" + net.JoinHostPort(host, "8082")
	// Warm the caches and the connections.
	var ngWarm int64
	bareURL := "http://" + bareAddr
	warm := []string{logged, noLog, uncached, ng.URL, bareURL}
	if compareBin != "" {
		warm = append(warm, compareURL)
	}
	for _, u := range warm {
		w := opts(u, hotCodes)
		w.Duration = 3 * time.Second
		r, err := wrk.Run(ctx, w)
		if err != nil {
			return err
		}
		if u == ng.URL {
			ngWarm = r.Requests
		}
	}
	warmRules := opts(logged, rulesCodes)
	warmRules.Duration = 3 * time.Second
	if _, err := wrk.Run(ctx, warmRules); err != nil {
		return err
	}
	adminURL := f.AdminURLs()[0]
	admins := map[string]string{logged: adminURL,
		noLog: "http://" + net.JoinHostPort(host, "9081"), uncached: "http://" + net.JoinHostPort(host, "9082")}
	pidOf := map[string]func() int{
		ng.URL:     ng.Pid,
		logged:     func() int { return f.Proxies[0].Process().Pid() },
		noLog:      func() int { return pids["proxy-nolog"] },
		uncached:   func() int { return pids["proxy-uncached"] },
		bareURL:    func() int { return bareCmd.Process.Pid },
		compareURL: func() int { return pids["proxy-compare"] },
	}
	admins[compareURL] = "http://" + net.JoinHostPort(host, "9083")
	serverCPU, serverSys := map[string]time.Duration{}, map[string]time.Duration{}
	runOne := func(name string, o wrk.Options) (wrk.Result, error) {
		say("wrk: %s", name)
		pid := pidOf[o.URL]()
		u0, s0 := baseline.CPUTimes(pid)
		defer func() {
			u1, s1 := baseline.CPUTimes(pid)
			serverCPU[name] += u1 + s1 - u0 - s0
			serverSys[name] += s1 - s0
		}()
		if a, ok := admins[o.URL]; ok && profileDir != "" {
			file := filepath.Join(profileDir, strings.NewReplacer(" ", "-", ",", "").Replace(name)+".pprof")
			go captureProfile(a, f.Secrets.AdminToken, file, o.Duration/2)
		}
		r, err := wrk.Run(ctx, o)
		if err == nil && r.Errors() > 0 {
			err = fmt.Errorf("%s: %d errors", name, r.Errors())
		}
		return r, err
	}
	pgR := pg
	pgR.Host = f.ProxyHost(0)
	var (
		ngRuns, loggedRuns, noLogRuns, uncachedRuns []wrk.Result
		rulesRuns, bareRuns, compareRuns            []wrk.Result
		tpsRuns                                     []float64
		pgCmd                                       string
		logBytes, logRecs, lookups, batches         float64
	)
	for round := 1; round <= rounds; round++ {
		say("round %d of %d", round, rounds)
		r, err := runOne("nginx return 302 + gzip log", opts(ng.URL, hotCodes))
		if err != nil {
			return err
		}
		ngRuns = append(ngRuns, r)
		b0, n0, err := logCounters(adminURL, f.Secrets.AdminToken)
		if err != nil {
			return err
		}
		if r, err = runOne("proxy cached, full logging", opts(logged, hotCodes)); err != nil {
			return err
		}
		loggedRuns = append(loggedRuns, r)
		time.Sleep(time.Second) // let the last batch reach the disk
		b1, n1, err := logCounters(adminURL, f.Secrets.AdminToken)
		if err != nil {
			return err
		}
		logBytes, logRecs = logBytes+b1-b0, logRecs+n1-n0
		if r, err = runOne("bare fasthttp 302", opts(bareURL, hotCodes)); err != nil {
			return err
		}
		bareRuns = append(bareRuns, r)
		if compareBin != "" {
			if r, err = runOne("proxy cached, full logging, -compare-bin build", opts(compareURL, hotCodes)); err != nil {
				return err
			}
			compareRuns = append(compareRuns, r)
		}
		if r, err = runOne("proxy cached, full logging, 3 rules", opts(logged, rulesCodes)); err != nil {
			return err
		}
		rulesRuns = append(rulesRuns, r)
		if r, err = runOne("proxy cached, logging off", opts(noLog, hotCodes)); err != nil {
			return err
		}
		noLogRuns = append(noLogRuns, r)
		l0, q0, err := batchCounters(admins[uncached], f.Secrets.AdminToken)
		if err != nil {
			return err
		}
		if r, err = runOne("proxy uncached, uniform", opts(uncached, allCodes)); err != nil {
			return err
		}
		uncachedRuns = append(uncachedRuns, r)
		l1, q1, err := batchCounters(admins[uncached], f.Secrets.AdminToken)
		if err != nil {
			return err
		}
		lookups, batches = lookups+l1-l0, batches+q1-q0
		say("pgbench -S on the replica, %d clients", dbConns)
		tps, cmd, err := pgR.SelectOnly(ctx, dbConns, threads, dur)
		if err != nil {
			return err
		}
		tpsRuns, pgCmd = append(tpsRuns, tps), cmd
	}
	ngRes, loggedRes, noLogRes, uncachedRes := median(ngRuns), median(loggedRuns), median(noLogRuns), median(uncachedRuns)
	rulesRes, bareRes := median(rulesRuns), median(bareRuns)
	tps := medianF(tpsRuns)
	perBatch := lookups / max(batches, 1)
	var ngReqs int64
	for _, r := range ngRuns {
		ngReqs += r.Requests
	}
	// Memory: a proxy whose cache is asked for every seeded link once,
	// its RSS read before and after; then the Go benchmarks' bytes per
	// cached link and per open segment row.
	var mem memory
	if measureMem {
		if mem, err = measureMemory(ctx, extra, func(name string) int { return pids[name] }, host, allCodes, f.Secrets.AdminToken); err != nil {
			return err
		}
	}
	say("takedowns: disable a cached link on the primary, poll every proxy until 410")
	takedowns, err := measureTakedowns(ctx, f.Primary.DSN(localfleet.Database), []string{logged, noLog, uncached}, hotCodes, codec, 20)
	if err != nil {
		return err
	}
	if err := ng.Stop(); err != nil {
		say("nginx stop: %v", err)
	}
	// nginx's log holds its warm-up's requests too.
	ngBytes := float64(ng.LogBytes()) / float64(ngReqs+ngWarm)
	// The proxy's log on disk is its sealed segments: stopping it with
	// SIGTERM seals the open one, so every request it answered (warm-up,
	// rounds, takedown checks) is in the manifest.
	m, err := scrape(adminURL, f.Secrets.AdminToken)
	if err != nil {
		return err
	}
	dropped := m[`shortfleet_proxy_log_records_total{result="dropped"}`]
	say("stopping the logging proxy with SIGTERM to seal its log")
	if err := f.Proxies[0].Stop(); err != nil {
		return fmt.Errorf("stop the logging proxy: %w", err)
	}
	sealed, err := sealedLog(f.ProxyLogDir(0))
	if err != nil {
		return err
	}
	var loggedReqs int64
	for _, r := range append(slices.Clone(loggedRuns), rulesRuns...) {
		loggedReqs += r.Requests
	}
	if sealed.rows < loggedReqs {
		return fmt.Errorf("the proxy's sealed log holds %d records, fewer than the %d requests wrk completed on it (%.0f dropped)", sealed.rows, loggedReqs, dropped)
	}
	proxyBytes := float64(sealed.bytes) / float64(sealed.rows)
	// While a segment is open its batches are uncompressed; sealing
	// compacts and compresses them. log_bytes_total counts the former.
	openBytes := logBytes / logRecs

	ms := func(us int64) string { return fmt.Sprintf("%.2f ms", float64(us)/1000) }
	// CPU per request over every round of a scenario.
	cpuPer := func(runName string, runs []wrk.Result) (server, kernel, client string) {
		var reqs int64
		var wrkCPU time.Duration
		for _, r := range runs {
			reqs += r.Requests
			wrkCPU += r.CPU
		}
		us := func(d time.Duration) string {
			return fmt.Sprintf("%.1f", float64(d.Microseconds())/float64(max(reqs, 1)))
		}
		return us(serverCPU[runName]), us(serverSys[runName]), us(wrkCPU)
	}
	runsOf := map[string][]wrk.Result{
		"nginx return 302 + gzip log": ngRuns, "proxy cached, full logging": loggedRuns,
		"proxy cached, logging off": noLogRuns, "proxy uncached, uniform": uncachedRuns,
		"proxy cached, full logging, 3 rules": rulesRuns,
		"bare fasthttp 302":                   bareRuns, "proxy cached, full logging, -compare-bin build": compareRuns,
	}
	row := func(name, runName string, r wrk.Result, vs string) []string {
		sc, kc, wc := cpuPer(runName, runsOf[runName])
		return []string{name, fmt.Sprintf("%.0f", r.RPS()), ms(r.LatP50US), ms(r.LatP99US), ms(r.LatP999US), sc, kc, wc, strconv.FormatInt(r.Errors(), 10), vs}
	}
	tbl := report.Table{
		Header: []string{"scenario", "requests/s", "p50", "p99", "p99.9", "server CPU µs/req", "of it in the kernel", "wrk CPU µs/req", "errors", "ratio"},
		Rows: [][]string{
			row("nginx `return 302`, gzip-buffered combined log (baseline)", "nginx return 302 + gzip log", ngRes, "1.00"),
			row("proxy, cached, full logging", "proxy cached, full logging", loggedRes, fmt.Sprintf("**%.2f** of nginx (target ≥ 0.8)", loggedRes.RPS()/ngRes.RPS())),
			row("bare fasthttp server answering the same 302, no logging (fasthttp's floor)", "bare fasthttp 302", bareRes,
				fmt.Sprintf("%.2f of nginx", bareRes.RPS()/ngRes.RPS())),
			row("proxy, cached, full logging, links with 3 redirect rules", "proxy cached, full logging, 3 rules", rulesRes,
				fmt.Sprintf("rules / plain: **%.2f** (target ≥ 0.95)", rulesRes.RPS()/loggedRes.RPS())),
			row("proxy, cached, logging off", "proxy cached, logging off", noLogRes, fmt.Sprintf("logging on / off: **%.2f** (target ≥ 0.9)", loggedRes.RPS()/noLogRes.RPS())),
			{fmt.Sprintf("`pgbench -S` on the replica, %d clients (baseline)", dbConns), fmt.Sprintf("%.0f tps", tps), "", "", "", "", "", "", "0", "1.00"},
			row(fmt.Sprintf("proxy, uncached, uniform over %d links, %d replica connections for lookups", nLinks, dbConns), "proxy uncached, uniform", uncachedRes,
				fmt.Sprintf("**%.2f** of pgbench (target ≥ 0.5)", uncachedRes.RPS()/tps)),
		},
	}
	bytesTbl := report.Table{
		Header: []string{"log", "bytes per request", "what it keeps"},
		Rows: [][]string{
			{"nginx combined, gzip level 1", fmt.Sprintf("%.1f", ngBytes), "address, time, request line, status, size, referrer, user agent"},
			{"proxy, sealed segments: Arrow IPC + zstd, as kept on disk", fmt.Sprintf("%.1f", proxyBytes), "all of nginx's, plus every header, query, link id, latency, cache outcome, replica lag"},
			{"proxy, open segment: uncompressed Arrow IPC, replaced when sealed", fmt.Sprintf("%.1f", openBytes), "the same"},
		},
	}
	if compareBin != "" {
		compareRes := median(compareRuns)
		tbl.Rows = append(tbl.Rows, row("proxy, cached, full logging, the -compare-bin build", "proxy cached, full logging, -compare-bin build", compareRes,
			fmt.Sprintf("this build / it: **%.2f**", loggedRes.RPS()/compareRes.RPS())))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, by `make bench-proxy` (bench/cmd/proxybench). Each figure is the median of %d interleaved runs; ratios are of medians.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), report.Machine(), rounds)
	b.WriteString(tbl.Markdown())
	b.WriteString("\n")
	b.WriteString(bytesTbl.Markdown())
	fmt.Fprintf(&b, "\nSealed: the bytes over the rows of the logging proxy's manifest, %d records in %d segments, read after the proxy was stopped with SIGTERM (which seals the open segment); %.0f records dropped. Open: `shortfleet_proxy_log_bytes_total` over records written during the logged runs.\n", sealed.rows, sealed.segments, dropped)
	fmt.Fprintf(&b, "\nEvery HTTP scenario: `%s` (the proxy scenarios with their own URL; cached ones draw from %d codes, warmed for 3 s first).\n", opts("URL", "hot.txt").Command(), hot)
	fmt.Fprintf(&b, "Uncached: the proxy runs with `-cache-bytes 1`, so every request is a replica lookup; concurrent lookups share queries, %.1f lookups per replica query in this run. pgbench: `%s` against the same replica, scale 10.\n", perBatch, pgCmd)
	fmt.Fprintf(&b, "\nTakedown: the time from `UPDATE links SET disabled = true` committing on the primary to every one of the %d proxies answering 410 for a link each had cached, over %d links: median **%s**, max %s (replication, then the proxies' 100 ms change-feed poll).\n",
		3, len(takedowns), takedowns[len(takedowns)/2].Round(time.Millisecond), takedowns[len(takedowns)-1].Round(time.Millisecond))
	if measureMem {
		b.WriteString("\n")
		b.WriteString(mem.markdown())
	}
	body := b.String()
	fmt.Println()
	fmt.Println(body)
	if err := report.Write(filepath.Join(results, report.Today()+"-proxy.md"), readme, "proxy-bench", body); err != nil {
		return err
	}
	report.PrintHeadlines(os.Stdout,
		report.Headline{Name: "proxy_vs_nginx", Value: loggedRes.RPS() / ngRes.RPS()},
		report.Headline{Name: "logging_on_vs_off", Value: loggedRes.RPS() / noLogRes.RPS()},
		report.Headline{Name: "rules_vs_plain_rate", Value: rulesRes.RPS() / loggedRes.RPS()},
		report.Headline{Name: "uncached_vs_pgbench", Value: uncachedRes.RPS() / tps},
		report.Headline{Name: "sealed_bytes_per_request", Value: proxyBytes},
		report.Headline{Name: "takedown_median_ms", Value: float64(takedowns[len(takedowns)/2].Microseconds()) / 1000},
		report.Headline{Name: "fasthttp_floor_vs_nginx", Value: bareRes.RPS() / ngRes.RPS()})
	if measureMem {
		report.PrintHeadlines(os.Stdout,
			report.Headline{Name: "cache_bytes_per_link", Value: mem.cachePerLink},
			report.Headline{Name: "segment_bytes_per_row", Value: mem.segmentPerRow},
			report.Headline{Name: "proxy_rss_mib_idle", Value: mem.rssIdle},
			report.Headline{Name: "proxy_rss_mib_cache_filled", Value: mem.rssFilled})
	}
	if compareBin != "" {
		report.PrintHeadlines(os.Stdout, report.Headline{Name: "proxy_vs_compare_build", Value: loggedRes.RPS() / median(compareRuns).RPS()})
	}
	return nil
}

// setRules gives the links from first to last three redirect rules.
func setRules(ctx context.Context, dsn string, first, last int64) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `UPDATE links SET rules = '[
		{"kind": "device", "value": "ios", "target": "https://example.com/ios"},
		{"kind": "language", "value": "fr", "target": "https://example.com/fr"},
		{"kind": "country", "value": "JP", "target": "https://example.com/jp"}]'
		WHERE id BETWEEN $1 AND $2`, first, last)
	if err != nil {
		return fmt.Errorf("set the rules links' rules: %w", err)
	}
	return nil
}

// measureTakedowns disables the last n hot links one by one and returns,
// sorted, how long each took to be answered 410 by every proxy.
func measureTakedowns(ctx context.Context, dsn string, proxies []string, hotFile string, codec *codes.Codec, n int) ([]time.Duration, error) {
	data, err := os.ReadFile(hotFile)
	if err != nil {
		return nil, err
	}
	hotCodes := strings.Fields(string(data))
	var pick []string
	for i := 0; i < n && i < len(hotCodes); i++ {
		pick = append(pick, hotCodes[len(hotCodes)-1-i])
	}
	return takedown.Measure(ctx, dsn, proxies, pick, codec)
}

// median returns the run with the median throughput.
func median(rs []wrk.Result) wrk.Result {
	sorted := append([]wrk.Result(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].RPS() < sorted[j].RPS() })
	return sorted[len(sorted)/2]
}

func medianF(xs []float64) float64 {
	sorted := append([]float64(nil), xs...)
	sort.Float64s(sorted)
	return sorted[len(sorted)/2]
}

// batchCounters reads a proxy's replica lookups and the queries they took.
func batchCounters(adminURL, token string) (lookups, batches float64, err error) {
	m, err := scrape(adminURL, token)
	return m[metrics.ReplicaLookups], m[metrics.ReplicaBatches], err
}

// scrape reads a proxy's metrics into a map from series to value.
func scrape(adminURL, token string) (map[string]float64, error) {
	return metrics.Scrape(adminURL, token)
}

// sealedLogStats sums a log folder's manifest.
type sealedLogStats struct {
	segments    int
	rows, bytes int64
}

// sealedLog sums the rows and bytes of the sealed segments a log folder's
// manifest lists.
func sealedLog(dir string) (sealedLogStats, error) {
	entries, err := logfmt.ReadManifest(dir)
	if err != nil {
		return sealedLogStats{}, fmt.Errorf("read the proxy's manifest: %w", err)
	}
	st := sealedLogStats{segments: len(entries)}
	for _, e := range entries {
		st.rows += e.Rows
		st.bytes += e.Bytes
	}
	if st.rows == 0 {
		return st, fmt.Errorf("the proxy's manifest in %s lists no records", dir)
	}
	return st, nil
}

// logCounters reads the proxy's uncompressed open-segment bytes and records
// written from its metrics.
func logCounters(adminURL, token string) (bytes, records float64, err error) {
	m, err := scrape(adminURL, token)
	return m["shortfleet_proxy_log_bytes_total"], m[`shortfleet_proxy_log_records_total{result="written"}`], err
}
