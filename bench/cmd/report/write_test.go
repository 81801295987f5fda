package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shortfleet/bench/internal/ingest"
	"shortfleet/bench/internal/report"
)

// TestWrite renders a run's results into the dated report, its charts and
// both README sections.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"bench.md", "top.md"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x\n<!-- bench-report:start -->\n<!-- bench-report:end -->\n<!-- bench-latest:start -->\n<!-- bench-latest:end -->\n"), 0o644)
	}
	c := config{links: 10_000_000, linksSmall: 1_000_000, sample: 1_000_000, zipf: 1.1, conns: []int{16, 64}, dur: 10 * time.Second,
		warm: 3 * time.Second, dbConns: 4, proxies: 16, results: dir, readme: filepath.Join(dir, "bench.md"), top: filepath.Join(dir, "top.md")}
	ms := time.Millisecond
	o := &outcome{lag: map[int]lagStats{16: {samples: 200, p50: ms, p99: 5 * ms, max: 9 * ms}, 64: {samples: 200, p50: 2 * ms, p99: 8 * ms, max: 20 * ms}},
		takedowns: []time.Duration{90 * ms, 100 * ms, 120 * ms},
		win1:      &ingest.Window{Records: 300_000, Segments: 80}, win10: &ingest.Window{Records: 3_000_000, Segments: 80},
		ingest1: ingest.Run{Took: 2 * time.Second}, ingest10: ingest.Run{Took: 12 * time.Second}}
	o.res = report.Results{{Scenario: sPgbenchS, Rate: 20000, Unit: "tps"}}
	for _, n := range c.conns {
		o.res = append(o.res,
			report.Point{Scenario: sNginx, Conns: n, Rate: 40000, Unit: "requests/s", P99: 2 * ms},
			report.Point{Scenario: sCached, Baseline: sNginx, Conns: n, Rate: 36000, Unit: "requests/s", P99: 3 * ms},
			report.Point{Scenario: sColdSmall, Baseline: sPgbenchS, Conns: n, Rate: 12000, Unit: "requests/s", P99: 10 * ms},
			report.Point{Scenario: sColdLarge, Baseline: sPgbenchS, Conns: n, Rate: 9000, Unit: "requests/s", P99: 15 * ms},
			report.Point{Scenario: sCreate, Baseline: sPgInsert, Conns: n, Rate: 5000, Unit: "creations/s", P99: 20 * ms},
			report.Point{Scenario: sDirect, Baseline: sNginx, Conns: n, Rate: 30000, Unit: "requests/s", P99: 4 * ms},
			report.Point{Scenario: sBalanced, Baseline: sNginx, Conns: n, Rate: 15000, Unit: "requests/s", P99: 8 * ms})
	}
	o.open = openRuns()
	c.coldRates, c.coldOpenRounds, c.coldOpenDur, c.coldOpenWarm = []int{600, 2000}, 3, 5*time.Second, time.Second
	if err := write(c, o); err != nil {
		t.Fatal(err)
	}
	date := report.Today()
	md, err := os.ReadFile(filepath.Join(dir, date+"-report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| cold redirects/s, 1 M vs 10 M links | 64 | 12000 | 9000 | **0.75** |",
		"| mapreduce -once wall time, 300 k vs 3 M records |  | 2.0 s | 12.0 s | **6.00** (records: 10.00) |",
		"| cached redirects/s, one proxy vs HAProxy over 16 | 16 | 30000 | 15000 | **0.50** |",
		"median **100ms**, max 120ms",
		"| 2000/s | 1.50 | **1.20** | 2.00 | 1.20, 1.33, 1.03 |",
		"| 600/s | 10 M | 3 | 1.00 ms | 3.00 ms | 5.00 ms | 3000 | 2400 | 0 | 3000 |",
		"| 600/s | 10 M | median | **1.00 ms** | **3.00 ms** | **4.00 ms** |",
		"![redirect throughput per scenario and connection count](" + date + "-redirects-throughput.svg)",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, ch := range charts(c, o) {
		data, err := os.ReadFile(filepath.Join(dir, date+"-"+ch.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(data, new(struct{})); err != nil {
			t.Errorf("%s: invalid SVG: %v", ch.file, err)
		}
	}
	// The bench README's links are relative to it: here it sits beside
	// the results.
	bench, _ := os.ReadFile(c.readme)
	if !strings.Contains(string(bench), "](./"+date+"-redirects-p99.svg)") {
		t.Errorf("bench README section lacks the charts:\n%s", bench)
	}
	top, _ := os.ReadFile(c.top)
	if !strings.Contains(string(top), "| cached redirects, Zipf | 36000 requests/s | 3.00 ms | nginx `return 302`, gzip log | **0.90** |") ||
		strings.Contains(string(top), "| 16 |") {
		t.Errorf("top README table is not the 64-connection one:\n%s", top)
	}
}

// openRuns is two rates of three open-loop rounds each: at 600/s the
// large set's p99 is 1.5x the small one's, at 2000/s 1.2x (medians).
func openRuns() []openRate {
	run := func(p50, p99, p999 int64) openSample {
		return openSample{p50: p50, p99: p99, p999: p999, sent: 3000, n: 2400, replica: 3000}
	}
	return []openRate{
		{rate: 600, sets: [2][]openSample{
			{run(1000, 2000, 3000), run(1000, 1900, 2500), run(1000, 2100, 3000)},
			{run(1000, 2900, 4000), run(1000, 3100, 3000), run(1000, 3000, 5000)}}},
		{rate: 2000, sets: [2][]openSample{
			{run(800, 5000, 9000), run(800, 6000, 9000), run(800, 7000, 8000)},
			{run(1200, 6000, 20000), run(1200, 8000, 18000), run(1200, 7200, 16000)}}},
	}
}

// TestColdGrowth: the headline is the ratio of the medians of the p99s at
// the highest rate, whatever order the rates ran in, and missing without
// open-loop runs.
func TestColdGrowth(t *testing.T) {
	runs := openRuns()
	for _, rs := range [][]openRate{runs, {runs[1], runs[0]}} {
		h, ok := coldGrowth(rs)
		if !ok || h.Name != "cold_p99_growth_10m" || h.Value != 1.2 {
			t.Fatalf("got %+v %v, want cold_p99_growth_10m 1.2", h, ok)
		}
	}
	if h, ok := coldGrowth(nil); ok {
		t.Fatalf("no open-loop runs: got %+v", h)
	}
}
