package web

import (
	"fmt"
	"html"
	"html/template"
	"strings"

	"shortfleet/primary/internal/qrcode"
	"shortfleet/primary/internal/store"
)

// Chart draws a link's clicks over time as an SVG bar chart: people and
// bots stacked per bucket, a title on each bar for the exact counts. Every
// text in it is escaped; numbers are formatted here.
func Chart(st store.Stats) template.HTML {
	const w, h, left, bottom, top = 960, 260, 48, 28, 12
	n := len(st.Series)
	var peak int64 = 1
	for _, p := range st.Series {
		peak = max(peak, p.Clicks)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" id="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, w, h,
		html.EscapeString(fmt.Sprintf("%d clicks by %s", st.Clicks, st.Granularity)))
	plotW, plotH := float64(w-left-8), float64(h-bottom-top)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, left, h-bottom, w-8, h-bottom)
	// Grid lines at 0, the peak, and halfway when that is a whole number.
	ticks := []int64{0, peak}
	if peak >= 2 && peak%2 == 0 {
		ticks = append(ticks, peak/2)
	}
	for _, v := range ticks {
		y := float64(h-bottom) - plotH*float64(v)/float64(peak)
		fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke-dasharray="2 4"/>`, left, y, w-8, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%d</text>`, left-6, y+4, v)
	}
	if n > 0 {
		slot := plotW / float64(n)
		bw := max(slot*0.8, 1)
		layout := "Jan 2 15:04"
		if st.Granularity == "day" {
			layout = "Jan 2"
		}
		for i, p := range st.Series {
			x := float64(left) + float64(i)*slot + (slot-bw)/2
			human := p.Clicks - p.Bots
			hh := plotH * float64(human) / float64(peak)
			bh := plotH * float64(p.Bots) / float64(peak)
			base := float64(h - bottom)
			label := html.EscapeString(fmt.Sprintf("%s: %d clicks, %d from bots", p.Time.Format(layout), p.Clicks, p.Bots))
			fmt.Fprintf(&b, `<g class="bar" data-clicks="%d"><title>%s</title>`, p.Clicks, label)
			if human > 0 {
				fmt.Fprintf(&b, `<rect class="human" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x, base-hh, bw, hh)
			}
			if p.Bots > 0 {
				fmt.Fprintf(&b, `<rect class="bot" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x, base-hh-bh, bw, bh)
			}
			b.WriteString(`</g>`)
		}
		for j, i := range []int{0, n / 2, n - 1} {
			x := float64(left) + (float64(i)+0.5)*slot
			anchor := []string{"start", "middle", "end"}[j]
			if j == 0 {
				x = float64(left)
			} else if j == 2 {
				x = float64(w - 8)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="%s">%s</text>`, x, h-8, anchor, html.EscapeString(st.Series[i].Time.Format(layout)))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// QR draws a URL's QR code as SVG (see package qrcode, which the API's
// QR codes share).
func QR(url string) ([]byte, error) { return qrcode.SVG(url) }
