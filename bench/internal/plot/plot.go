// Package plot draws the benchmark report's charts as standalone SVG:
// grouped bar charts, one group per load setting (connections, say), one
// bar per series (a scenario and its baseline), each bar labelled with its
// value. It is small on purpose: the report needs bars, axes, labels and a
// legend, and an SVG written by hand keeps go.mod free of a plotting
// stack.
package plot

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Bars is a grouped bar chart.
type Bars struct {
	Title  string
	YLabel string   // the unit of the values, e.g. "requests/s"
	Groups []string // labels along the x axis, e.g. "16 conns"
	Series []Series
}

// Series is one bar in every group; a NaN value leaves its bar out.
type Series struct {
	Name   string
	Values []float64 // one per group
}

// Palette is the bars' colours, series by series (colour-blind safe).
var Palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// Chart geometry, in SVG user units.
const (
	width   = 760
	height  = 420
	left    = 70
	right   = 20
	top     = 50
	bottom  = 60
	legendH = 18
)

// SVG renders the chart. Values must be finite and non-negative (NaN
// skips a bar); the y axis starts at zero and ends at a round number.
func (c Bars) SVG() (string, error) {
	if len(c.Groups) == 0 || len(c.Series) == 0 {
		return "", fmt.Errorf("plot %q: no groups or no series", c.Title)
	}
	peak := 0.0
	for _, s := range c.Series {
		if len(s.Values) != len(c.Groups) {
			return "", fmt.Errorf("plot %q: series %q has %d values for %d groups", c.Title, s.Name, len(s.Values), len(c.Groups))
		}
		for _, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			if v < 0 || math.IsInf(v, 0) {
				return "", fmt.Errorf("plot %q: series %q has value %v", c.Title, s.Name, v)
			}
			peak = max(peak, v)
		}
	}
	yMax, step := niceScale(peak)
	legendRows := (len(c.Series) + 1) / 2
	plotTop := top + legendRows*legendH
	plotH := float64(height - plotTop - bottom)
	plotW := float64(width - left - right)
	y := func(v float64) float64 { return float64(plotTop) + plotH*(1-v/yMax) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(c.Title))
	// Legend, two series a row.
	for i, s := range c.Series {
		lx := left + (i%2)*340
		ly := top - 10 + (i/2)*legendH
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			lx, ly-10, color(i), lx+16, ly, esc(s.Name))
	}
	// Grid and y ticks.
	for v := 0.0; v <= yMax*1.0000001; v += step {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, width-right, y(v), y(v), left-6, y(v)+4, Format(v))
	}
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", float64(plotTop)+plotH/2, esc(c.YLabel))
	// Bars.
	groupW := plotW / float64(len(c.Groups))
	barW := groupW * 0.8 / float64(len(c.Series))
	for g, label := range c.Groups {
		gx := float64(left) + groupW*float64(g)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+groupW/2, height-bottom+18, esc(label))
		for i, s := range c.Series {
			v := s.Values[g]
			if math.IsNaN(v) {
				continue
			}
			x := gx + groupW*0.1 + barW*float64(i)
			fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s</title></rect>`+"\n",
				x, y(v), barW-2, y(0)-y(v), color(i), esc(s.Name), esc(label), Format(v))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%s</text>`+"\n", x+(barW-2)/2, y(v)-3, Format(v))
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="black"/>`+"\n", left, width-right, y(0), y(0))
	b.WriteString("</svg>\n")
	return b.String(), nil
}

func color(i int) string { return Palette[i%len(Palette)] }

// esc escapes s for SVG text, dropping Markdown's code backticks.
func esc(s string) string { return html.EscapeString(strings.ReplaceAll(s, "`", "")) }

// niceScale returns an axis end at or above peak and a tick step, both
// 1, 2 or 5 times a power of ten, with four to ten ticks.
func niceScale(peak float64) (end, step float64) {
	if peak <= 0 {
		return 1, 0.2
	}
	raw := peak / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return math.Ceil(peak/step) * step, step
}

// Format writes a value short: 12345 as "12.3k", 0.25 as "0.25".
func Format(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case a >= 100 || a == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}
