// Command primarybench measures link creation through the primary's API:
//
//   - creations per second with keep-alive, wrk with 64 connections;
//   - latency at a fixed 1,000 creations a second (an open-loop generator
//     that times each request from when it was due, so a stall shows);
//   - beside pgbench inserting single rows into a table of the links'
//     shape, with as many connections, in the same run.
//
// It writes bench/results/<date>-primary.md and the section in
// bench/README.md.
//
// Its output ends with one "bench: NAME VALUE" line a headline figure:
// creation_vs_pgbench, creations_per_s, fixed_rate_p99_ms.
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
	"sort"
	"strings"
	"sync"
	"time"

	"shortfleet/bench/internal/baseline"
	"shortfleet/bench/internal/report"
	"shortfleet/bench/internal/wrk"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/pgcluster"
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
	work, err := os.MkdirTemp("", "shortfleet-pbench-")
	if err != nil {
		return err
	}
	os.Chmod(work, 0o755)
	defer os.RemoveAll(work)
	binAbs, _ := filepath.Abs(bin)
	subnet, err := localfleet.FreeSubnet()
	if err != nil {
		return err
	}
	say("starting a 1-proxy fleet on %s.x", subnet)
	f, err := localfleet.Start(ctx, localfleet.Config{
		StateDir: filepath.Join(work, "fleet"), BinDir: binAbs, Proxies: 1, Subnet: subnet, Schedule: "@every 1000h",
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

	say("wrk: creations with keep-alive, %d connections", conns)
	opts := wrk.Options{URL: base, Script: "bench/wrk/create.lua", Threads: 1, Connections: conns, Duration: dur, Env: []string{"KEY=" + acct.APIKey}}
	warm := opts
	warm.Duration = 3 * time.Second
	if _, err := wrk.Run(ctx, warm); err != nil {
		return err
	}
	before := count()
	res, err := wrk.Run(ctx, opts)
	if err != nil {
		return err
	}
	created := count() - before
	// wrk does not count the requests in flight when it stops: at most one
	// a connection more may have been created.
	if res.Errors() > 0 || created < res.Requests || created > res.Requests+int64(conns) {
		return fmt.Errorf("wrk: %d requests, %d errors, %d links created", res.Requests, res.Errors(), created)
	}

	say("fixed rate: %d creations a second for %s", rate, dur)
	lat, failed, err := fixedRate(base, acct.APIKey, rate, dur)
	if err != nil {
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
	tbl := report.Table{
		Header: []string{"scenario", "creations/s", "p50", "p99", "p99.9", "ratio"},
		Rows: [][]string{
			{fmt.Sprintf("`pgbench`: one INSERT a transaction, %d clients (baseline)", conns), fmt.Sprintf("%.0f", tps), "", "", "", "1.00"},
			{fmt.Sprintf("API, `POST /api/links`, keep-alive, %d connections", conns), fmt.Sprintf("%.0f", res.RPS()), ms(res.LatP50US), ms(res.LatP99US), ms(res.LatP999US),
				fmt.Sprintf("**%.2f** of pgbench; aim 5,000/s", res.RPS()/tps)},
			{fmt.Sprintf("API at a fixed %d/s", rate), fmt.Sprintf("%.0f (%d failed)", float64(len(lat))/dur.Seconds(), failed),
				ms(pct(lat, 50)), "**" + ms(pct(lat, 99)) + "**", ms(pct(lat, 99.9)), "latency from when each request was due"},
		},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, by `make bench-primary` (bench/cmd/primarybench).\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), report.Machine())
	b.WriteString(tbl.Markdown())
	fmt.Fprintf(&b, "\nwrk: `%s`; every 201 was checked against the links table (%d created). pgbench: `%s` on the same primary (Postgres 15, fsync and synchronous commit on). ", strings.ReplaceAll(opts.Command(), acct.APIKey, "$API_KEY"), created, strings.ReplaceAll(pgCmd, work, "$WORK"))
	b.WriteString("The API commits links in groups: one transaction (and fsync) for every creation waiting, under the lock that keeps link ids in commit order.\n")
	out := b.String()
	fmt.Println()
	fmt.Println(out)
	if err := report.Write(filepath.Join(results, report.Today()+"-primary.md"), readme, "primary-bench", out); err != nil {
		return err
	}
	report.PrintHeadlines(os.Stdout,
		report.Headline{Name: "creation_vs_pgbench", Value: res.RPS() / tps},
		report.Headline{Name: "creations_per_s", Value: res.RPS()},
		report.Headline{Name: "fixed_rate_p99_ms", Value: float64(pct(lat, 99)) / 1000})
	return nil
}

// fixedRate sends creations at rate a second for d, each on schedule
// whatever the last one did, and returns each latency in microseconds,
// measured from when the request was due.
func fixedRate(base, key string, rate int, d time.Duration) ([]int64, int, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 10 * time.Second}
	n := int(d.Seconds()) * rate
	lat := make([]int64, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := 0
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Go(func() {
			body := fmt.Sprintf(`{"target":"https://example.com/fixed/%d"}`, i)
			req, _ := http.NewRequest("POST", base+"/api/links", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			took := time.Since(due)
			ok := err == nil && resp.StatusCode == 201
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			if ok {
				lat = append(lat, took.Microseconds())
			} else {
				failed++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, failed, nil
}

func pct(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}
