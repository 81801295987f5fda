package report

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"shortfleet/bench/internal/plot"
)

// Point is one measured load point of a scenario.
type Point struct {
	Scenario string
	// Baseline names the scenario this one is compared with, at the same
	// connection count or, failing that, its point with Conns 0 (a
	// baseline run once, like pgbench with a fixed client count). Empty
	// for a baseline itself.
	Baseline string
	Conns    int     // client connections; 0 when it does not apply
	Rate     float64 // per second, in Unit
	Unit     string  // "requests/s", "creations/s", "tps", "records/s"
	// Latency percentiles; zero when the scenario does not measure them.
	P50, P99, P999 time.Duration
	Errors         int64
}

// Results is every point of one run, in the order they should be shown.
type Results []Point

// Find returns scenario's point at conns.
func (rs Results) Find(scenario string, conns int) (Point, bool) {
	for _, p := range rs {
		if p.Scenario == scenario && p.Conns == conns {
			return p, true
		}
	}
	return Point{}, false
}

// BaselineOf returns p's baseline point, if it has one.
func (rs Results) BaselineOf(p Point) (Point, bool) {
	if p.Baseline == "" {
		return Point{}, false
	}
	if b, ok := rs.Find(p.Baseline, p.Conns); ok {
		return b, true
	}
	return rs.Find(p.Baseline, 0)
}

// Ms formats a latency in milliseconds, "" for zero.
func Ms(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}

// Ratio formats a/b with two decimals, "" when either is zero.
func Ratio(a, b float64) string {
	if a == 0 || b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return ""
	}
	return fmt.Sprintf("%.2f", a/b)
}

// Table renders every point beside its baseline: throughput ratio
// (higher is better) and p99 ratio (lower is better).
func (rs Results) Table() Table {
	t := Table{Header: []string{"scenario", "conns", "rate", "p50", "p99", "p99.9", "errors", "baseline", "baseline rate", "baseline p99", "rate ratio", "p99 ratio"}}
	for _, p := range rs {
		conns := ""
		if p.Conns > 0 {
			conns = strconv.Itoa(p.Conns)
		}
		row := []string{p.Scenario, conns, fmt.Sprintf("%.0f %s", p.Rate, p.Unit), Ms(p.P50), Ms(p.P99), Ms(p.P999), strconv.FormatInt(p.Errors, 10)}
		if b, ok := rs.BaselineOf(p); ok {
			row = append(row, b.Scenario, fmt.Sprintf("%.0f %s", b.Rate, b.Unit), Ms(b.P99),
				bold(Ratio(p.Rate, b.Rate)), Ratio(float64(p.P99), float64(b.P99)))
		} else {
			row = append(row, "(baseline)", "", "", "", "")
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func bold(s string) string {
	if s == "" {
		return s
	}
	return "**" + s + "**"
}

// Chart draws one value of the given scenarios, one group per
// connection count; a scenario with no point at a count leaves a gap.
func (rs Results) Chart(title, ylabel string, scenarios []string, conns []int, value func(Point) float64) plot.Bars {
	c := plot.Bars{Title: title, YLabel: ylabel}
	for _, n := range conns {
		c.Groups = append(c.Groups, strconv.Itoa(n)+" connections")
	}
	for _, s := range scenarios {
		ser := plot.Series{Name: s}
		for _, n := range conns {
			v := math.NaN()
			if p, ok := rs.Find(s, n); ok {
				v = value(p)
			} else if p, ok := rs.Find(s, 0); ok {
				v = value(p)
			}
			ser.Values = append(ser.Values, v)
		}
		c.Series = append(c.Series, ser)
	}
	return c
}

// Millis is a point's p99 in milliseconds, for charts.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ReplaceSection replaces the text between "<!-- name:start -->" and
// "<!-- name:end -->" in the file at path with body.
func ReplaceSection(path, name, body string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	start, end := "<!-- "+name+":start -->", "<!-- "+name+":end -->"
	s := string(data)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s lacks the markers %s ... %s", path, start, end)
	}
	s = s[:i+len(start)] + "\n" + body + "\n" + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
