package plot

import (
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"testing"
)

type svgDoc struct {
	XMLName xml.Name  `xml:"svg"`
	Rects   []svgRect `xml:"rect"`
	Texts   []string  `xml:"text"`
}

type svgRect struct {
	Class  string `xml:"class,attr"`
	Height string `xml:"height,attr"`
	Title  string `xml:"title"`
}

func TestBarsSVG(t *testing.T) {
	c := Bars{
		Title:  "redirects <cached> & cold",
		YLabel: "requests/s",
		Groups: []string{"16 conns", "64 conns", "256 conns"},
		Series: []Series{
			{Name: "nginx (baseline)", Values: []float64{40000, 42000, 38000}},
			{Name: "proxy", Values: []float64{36000, math.NaN(), 10000}},
		},
	}
	out, err := c.SVG()
	if err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not valid XML: %v\n%s", err, out)
	}
	heights := map[string]float64{}
	for _, r := range doc.Rects {
		if r.Class != "bar" {
			continue
		}
		h, err := strconv.ParseFloat(r.Height, 64)
		if err != nil {
			t.Fatalf("bar %q height %q: %v", r.Title, r.Height, err)
		}
		heights[r.Title] = h
	}
	if len(heights) != 5 { // six values, one NaN
		t.Fatalf("got %d bars, want 5: %v", len(heights), heights)
	}
	// Bars are proportional to their values, from a zero baseline.
	for _, tc := range []struct{ a, b string }{
		{"nginx (baseline), 64 conns: 42.0k", "proxy, 256 conns: 10.0k"},
		{"proxy, 16 conns: 36.0k", "nginx (baseline), 256 conns: 38.0k"},
	} {
		ha, hb := heights[tc.a], heights[tc.b]
		if ha == 0 || hb == 0 {
			t.Fatalf("missing bar %q or %q in %v", tc.a, tc.b, heights)
		}
		va, _ := strconv.ParseFloat(strings.TrimSuffix(tc.a[strings.LastIndex(tc.a, " ")+1:], "k"), 64)
		vb, _ := strconv.ParseFloat(strings.TrimSuffix(tc.b[strings.LastIndex(tc.b, " ")+1:], "k"), 64)
		if got, want := ha/hb, va/vb; math.Abs(got-want) > 0.01 {
			t.Errorf("%q / %q heights: got %.3f, want %.3f", tc.a, tc.b, got, want)
		}
	}
	if !strings.Contains(strings.Join(doc.Texts, "\n"), "redirects <cached> & cold") {
		t.Errorf("title not in the texts: %q", doc.Texts)
	}
}

func TestBarsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Bars
	}{
		{"no groups", Bars{Series: []Series{{Name: "a"}}}},
		{"short series", Bars{Groups: []string{"a", "b"}, Series: []Series{{Name: "s", Values: []float64{1}}}}},
		{"negative", Bars{Groups: []string{"a"}, Series: []Series{{Name: "s", Values: []float64{-1}}}}},
		{"infinite", Bars{Groups: []string{"a"}, Series: []Series{{Name: "s", Values: []float64{math.Inf(1)}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.c.SVG(); err == nil {
				t.Fatal("got no error")
			}
		})
	}
}

func TestNiceScale(t *testing.T) {
	for _, tc := range []struct{ peak, end, step float64 }{
		{0, 1, 0.2},
		{42000, 50000, 10000},
		{9.5, 10, 2},
		{1234, 1500, 500},
		{0.3, 0.3, 0.1},
	} {
		end, step := niceScale(tc.peak)
		if math.Abs(end-tc.end) > 1e-9 || math.Abs(step-tc.step) > 1e-9 {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", tc.peak, end, step, tc.end, tc.step)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {0.25, "0.25"}, {3.14159, "3.1"}, {512, "512"}, {12345, "12.3k"}, {2_500_000, "2.50M"},
	} {
		if got := Format(tc.v); got != tc.want {
			t.Errorf("Format(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
