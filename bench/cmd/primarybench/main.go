// Command primarybench measures link creation through the primary's API,
// with synchronous commit to the standby on (the default: each commit
// waits for the fleet's one standby) and then off, on the same fleet:
//
//   - creations per second with keep-alive, wrk with 64 connections;
//   - latency at a fixed 1,000 creations a second (an open-loop generator
//     that times each request from when it was due, so a stall shows);
//   - beside pgbench inserting single rows into a table of the links'
//     shape, with as many connections, in the same run (synchronous
//     commit on).
//
// It writes bench/results/<date>-primary.md and the section in
// bench/README.md.
//
// Its output ends with one "bench: NAME VALUE" line a headline figure:
// creation_vs_pgbench, creations_per_s, fixed_rate_p99_ms (synchronous
// commit on), creations_per_s_async, fixed_rate_p99_ms_async (off), and
// sync_vs_async_creations (creations/s on over off).
//
//	make bench-primary
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"shortfleet/bench/internal/baseline"
	"shortfleet/bench/internal/fixedrate"
	"shortfleet/bench/internal/report"
	"shortfleet/bench/internal/wrk"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/provisioning/settings"
)

func main() {
	var (
		dur     = flag.Duration("duration", 10*time.Second, "length of each run")
		conns   = flag.Int("connections", 64, "wrk connections, and pgbench clients")
		rate    = flag.Int("rate", 1000, "creations a second for the latency run")
		bin     = flag.String("bin", "bin", "folder with the binaries")
		results = flag.String("results", "bench/results", "folder for the dated report")
		readme  = flag.String("readme", "bench/README.md", "README whose primary-bench section is rewritten")
	)
	flag.Parse()
	if err := run(*dur, *conns, *rate, *bin, *results, *readme); err != nil {
		fmt.Fprintln(os.Stderr, "primarybench:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("primarybench: "+format+"\n", args...) }

func run(dur time.Duration, conns, rate int, bin, results, readme string) error {
	ctx := context.Background()
	work, cleanup, err := report.WorkDir("pbench", false)
	if err != nil {
		return err
	}
	defer cleanup()
	binAbs, _ := filepath.Abs(bin)
	subnet, err := localfleet.FreeSubnet()
	if err != nil {
		return err
	}
	// One proxy host, so one standby: what synchronous commit waits for.
	say("starting a 1-proxy fleet on %s.x", subnet)
	f, err := localfleet.Start(ctx, localfleet.Config{
		StateDir: filepath.Join(work, "fleet"), BinDir: binAbs, Proxies: 1, Subnet: subnet, Schedule: "@every 1000h",
		// The app itself, as make bench's creation scenario measures
		// it: without the balancer it serves plain HTTP, so neither
		// TLS nor HAProxy is in the figure beside pgbench.
		NoBalancer: true,
		// The benchmark is one account creating as fast as it can.
		PrimaryArgs: []string{"-rate-create", "0", "-rate-create-addr", "0"},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer f.Stop()
	base := f.PrimaryURL()
	body, _ := json.Marshal(map[string]string{"email": "bench@example.com", "password": "a long enough password"})
	resp, err := http.Post(base+"/api/signup", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	var acct struct {
		APIKey string `json:"api_key"`
	}
	json.NewDecoder(resp.Body).Decode(&acct)
	resp.Body.Close()
	count := func() (n int64) {
		conn, err := f.Primary.Connect(ctx, localfleet.Database)
		if err != nil {
			return -1
		}
		defer conn.Close(ctx)
		conn.QueryRow(ctx, `SELECT count(*) FROM links`).Scan(&n)
		return n
	}

	// Both measured on this fleet, one after the other: on (the default)
	// first, then off, then on again for pgbench.
	on, err := measure(ctx, base, acct.APIKey, conns, rate, dur, count, "on")
	if err != nil {
		return err
	}
	if err := f.SetSynchronous(ctx, false); err != nil {
		return err
	}
	off, err := measure(ctx, base, acct.APIKey, conns, rate, dur, count, "off")
	if err != nil {
		return err
	}
	if err := f.SetSynchronous(ctx, true); err != nil {
		return err
	}

	say("pgbench: single-row inserts, %d clients", conns)
	pgBin, _ := pgcluster.FindBinDir()
	conn, err := f.Primary.Connect(ctx, localfleet.Database)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE bench_links (LIKE links INCLUDING DEFAULTS INCLUDING INDEXES)`); err != nil {
		return err
	}
	conn.Close(ctx)
	script := filepath.Join(work, "insert.sql")
	os.WriteFile(script, []byte(`INSERT INTO bench_links (id, user_id, target, redirect_type) VALUES (nextval('link_id_seq'), 1, 'https://example.com/landing/pgbench?utm_source=bench', 302);`+"\n"), 0o644)
	pg := baseline.Pgbench{Bin: filepath.Join(pgBin, "pgbench"), Host: f.PrimaryHost(), Port: localfleet.PortPostgres,
		User: pgcluster.Superuser, Password: f.Secrets.PGPassword, DB: localfleet.Database}
	tps, pgCmd, err := pg.Custom(ctx, script, conns, 1, dur)
	if err != nil {
		return err
	}

	ms := func(us int64) string { return fmt.Sprintf("%.2f ms", float64(us)/1000) }
	onRPS, offRPS := on.wrk.RPS(), off.wrk.RPS()
	tbl := report.Table{
		Header: []string{"scenario", "creations/s", "p50", "p99", "p99.9", "ratio"},
		Rows: [][]string{
			{fmt.Sprintf("`pgbench`: one INSERT a transaction, %d clients (baseline)", conns), fmt.Sprintf("%.0f", tps), "", "", "", "1.00"},
			{fmt.Sprintf("API, `POST /api/links`, keep-alive, %d connections, synchronous commit on", conns), fmt.Sprintf("%.0f", onRPS),
				ms(on.wrk.LatP50US), ms(on.wrk.LatP99US), ms(on.wrk.LatP999US), fmt.Sprintf("**%.2f** of pgbench; aim 5,000/s", onRPS/tps)},
			{fmt.Sprintf("API at a fixed %d/s, synchronous commit on", rate), on.fixedCount(dur),
				ms(pct(on.lat, 50)), "**" + ms(pct(on.lat, 99)) + "**", ms(pct(on.lat, 99.9)), "from when each request was due; aim p99 under 20 ms"},
			{fmt.Sprintf("API, `POST /api/links`, keep-alive, %d connections, synchronous commit off", conns), fmt.Sprintf("%.0f", offRPS),
				ms(off.wrk.LatP50US), ms(off.wrk.LatP99US), ms(off.wrk.LatP999US), fmt.Sprintf("on is **%.2f** of off", onRPS/offRPS)},
			{fmt.Sprintf("API at a fixed %d/s, synchronous commit off", rate), off.fixedCount(dur),
				ms(pct(off.lat, 50)), ms(pct(off.lat, 99)), ms(pct(off.lat, 99.9)), "from when each request was due"},
		},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, by `make bench-primary` (bench/cmd/primarybench).\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), report.Machine())
	b.WriteString(tbl.Markdown())
	fmt.Fprintf(&b, "\nSynchronous commit on (the default): each commit waits for the fleet's one streaming standby to have it (`synchronous_standby_names = %s`); off: for the primary's own disk only. Both on the same fleet, one after the other. ", settings.LoadPostgres().SynchronousStandbyNames)
	fmt.Fprintf(&b, "wrk: `%s`; every 201 was checked against the links table (%d created with synchronous commit on, %d off). pgbench: `%s` on the same primary (Postgres 15, fsync on, synchronous commit on). ",
		strings.ReplaceAll(on.cmd, acct.APIKey, "$API_KEY"), on.created, off.created, strings.ReplaceAll(pgCmd, work, "$WORK"))
	b.WriteString("The API commits links in groups: one transaction (and fsync) for every creation waiting, under the lock that keeps link ids in commit order.\n")
	out := b.String()
	fmt.Println()
	fmt.Println(out)
	if err := report.Write(filepath.Join(results, report.Today()+"-primary.md"), readme, "primary-bench", out); err != nil {
		return err
	}
	report.PrintHeadlines(os.Stdout,
		report.Headline{Name: "creation_vs_pgbench", Value: onRPS / tps},
		report.Headline{Name: "creations_per_s", Value: onRPS},
		report.Headline{Name: "fixed_rate_p99_ms", Value: float64(pct(on.lat, 99)) / 1000},
		report.Headline{Name: "creations_per_s_async", Value: offRPS},
		report.Headline{Name: "fixed_rate_p99_ms_async", Value: float64(pct(off.lat, 99)) / 1000},
		report.Headline{Name: "sync_vs_async_creations", Value: onRPS / offRPS})
	return nil
}

// creation is what one setting of synchronous commit measured.
type creation struct {
	wrk     wrk.Result
	cmd     string // the wrk command
	created int64  // links the wrk run made, counted in the table
	lat     []int64
	failed  int
}

func (c creation) fixedCount(dur time.Duration) string {
	return fmt.Sprintf("%.0f (%d failed)", float64(len(c.lat))/dur.Seconds(), c.failed)
}

// measure runs wrk (after a 3 s warm-up) and the fixed-rate generator
// against the primary app, with synchronous commit as it is (sync names
// it in the output), and checks wrk's count against the links table.
func measure(ctx context.Context, base, key string, conns, rate int, dur time.Duration, count func() int64, sync string) (creation, error) {
	say("synchronous commit %s: wrk, creations with keep-alive, %d connections", sync, conns)
	opts := wrk.Options{URL: base, Script: "bench/wrk/create.lua", Threads: 1, Connections: conns, Duration: dur, Env: []string{"KEY=" + key}}
	warm := opts
	warm.Duration = 3 * time.Second
	if _, err := wrk.Run(ctx, warm); err != nil {
		return creation{}, err
	}
	before := count()
	res, err := wrk.Run(ctx, opts)
	if err != nil {
		return creation{}, err
	}
	created := count() - before
	// wrk does not count the requests in flight when it stops: at most one
	// a connection more may have been created.
	if res.Errors() > 0 || created < res.Requests || created > res.Requests+int64(conns) {
		return creation{}, fmt.Errorf("wrk, synchronous commit %s: %d requests, %d errors, %d links created", sync, res.Requests, res.Errors(), created)
	}
	say("synchronous commit %s: fixed rate, %d creations a second for %s", sync, rate, dur)
	lat, failed, err := fixedRate(base, key, rate, dur)
	if err != nil {
		return creation{}, err
	}
	return creation{wrk: res, cmd: opts.Command(), created: created, lat: lat, failed: failed}, nil
}

// fixedRate sends creations at rate a second for d, each on schedule
// whatever the last one did, and returns each latency in microseconds,
// measured from when the request was due.
func fixedRate(base, key string, rate int, d time.Duration) ([]int64, int, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 10 * time.Second}
	r := fixedrate.Run(rate, d, 0, func(i int) bool {
		body := fmt.Sprintf(`{"target":"https://example.com/fixed/%d"}`, i)
		req, _ := http.NewRequest("POST", base+"/api/links", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 201
	})
	return r.Lat, r.Failed, nil
}

func pct(sorted []int64, p float64) int64 { return fixedrate.Percentile(sorted, p) }
