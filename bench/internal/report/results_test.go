package report

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sample() Results {
	ms := time.Millisecond
	return Results{
		{Scenario: "nginx", Conns: 16, Rate: 40000, Unit: "requests/s", P50: ms / 2, P99: 2 * ms, P999: 4 * ms},
		{Scenario: "nginx", Conns: 64, Rate: 50000, Unit: "requests/s", P50: ms, P99: 4 * ms, P999: 8 * ms},
		{Scenario: "proxy", Baseline: "nginx", Conns: 16, Rate: 30000, Unit: "requests/s", P50: ms, P99: 3 * ms, P999: 5 * ms},
		{Scenario: "proxy", Baseline: "nginx", Conns: 64, Rate: 45000, Unit: "requests/s", P50: ms, P99: 8 * ms, P999: 9 * ms, Errors: 2},
		{Scenario: "pgbench -S", Rate: 20000, Unit: "tps"},
		{Scenario: "cold", Baseline: "pgbench -S", Conns: 64, Rate: 10000, Unit: "requests/s", P99: 20 * ms},
	}
}

func TestResultsTable(t *testing.T) {
	md := sample().Table().Markdown()
	lines := strings.Split(strings.TrimSpace(md), "\n")
	if len(lines) != 2+6 {
		t.Fatalf("got %d lines, want 8:\n%s", len(lines), md)
	}
	for _, want := range []string{
		"| proxy | 16 | 30000 requests/s | 1.00 ms | 3.00 ms | 5.00 ms | 0 | nginx | 40000 requests/s | 2.00 ms | **0.75** | 1.50 |",
		"| proxy | 64 | 45000 requests/s | 1.00 ms | 8.00 ms | 9.00 ms | 2 | nginx | 50000 requests/s | 4.00 ms | **0.90** | 2.00 |",
		// A baseline run once stands beside every connection count.
		"| cold | 64 | 10000 requests/s |  | 20.00 ms |  | 0 | pgbench -S | 20000 tps |  | **0.50** |  |",
		"| nginx | 16 | 40000 requests/s | 0.50 ms | 2.00 ms | 4.00 ms | 0 | (baseline) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	for i, l := range lines {
		if n := strings.Count(l, "|"); n != 13 {
			t.Errorf("line %d has %d cells: %q", i, n-1, l)
		}
	}
}

func TestResultsChart(t *testing.T) {
	c := sample().Chart("redirects", "requests/s", []string{"nginx", "proxy", "pgbench -S"}, []int{16, 64, 256}, func(p Point) float64 { return p.Rate })
	svg, err := c.SVG()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rects []struct {
			Class string `xml:"class,attr"`
		} `xml:"rect"`
	}
	if err := xml.Unmarshal([]byte(svg), &doc); err != nil {
		t.Fatalf("invalid SVG: %v", err)
	}
	bars := 0
	for _, r := range doc.Rects {
		if r.Class == "bar" {
			bars++
		}
	}
	// nginx and proxy at 16 and 64; pgbench (run once) at all three.
	if bars != 7 {
		t.Fatalf("got %d bars, want 7", bars)
	}
}

func TestReplaceSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	os.WriteFile(path, []byte("a\n<!-- x:start -->\nold\n<!-- x:end -->\nb\n"), 0o644)
	if err := ReplaceSection(path, "x", "new"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := "a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if err := ReplaceSection(path, "y", "new"); err == nil {
		t.Fatal("no error for missing markers")
	}
}

func TestHeadlines(t *testing.T) {
	var b strings.Builder
	PrintHeadlines(&b, Headline{"proxy_vs_nginx", 0.93456}, Headline{"creations_per_s", 9587.4}, Headline{Slug("cached redirects via HAProxy, N=16") + "_ratio", 0.5})
	want := "bench: proxy_vs_nginx 0.935\nbench: creations_per_s 9587\nbench: cached_redirects_via_haproxy_n_16_ratio 0.500\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	if got := Slug("`pgbench -S` on the replica"); got != "pgbench_s_on_the_replica" {
		t.Fatalf("slug %q", got)
	}
}

// TestWorkDir: the folder is open to other users (0755), removed by its
// cleanup, and left in place by it with keep.
func TestWorkDir(t *testing.T) {
	for _, keep := range []bool{false, true} {
		dir, cleanup, err := WorkDir("test", keep)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("keep=%v: %s: %v, %v; want a 0755 folder", keep, dir, fi, err)
		}
		cleanup()
		_, err = os.Stat(dir)
		if gone := os.IsNotExist(err); gone == keep {
			t.Errorf("keep=%v: after cleanup, folder gone: %v", keep, gone)
		}
		os.RemoveAll(dir)
	}
}
