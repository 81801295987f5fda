package qrcode

import (
	"bytes"
	"image/png"
	"regexp"
	"strconv"
	"testing"
)

// TestPNGMatchesSVG: the PNG and the SVG of a URL are the same code: every
// module the SVG draws black is black in the PNG at its scale, every
// other pixel white, a quiet zone of 4 modules around; a scale out of
// bounds is refused.
func TestPNGMatchesSVG(t *testing.T) {
	const url, scale = "https://sho.rt/abc1234", 3
	svg, err := SVG(url)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`viewBox="0 0 (\d+) (\d+)"`).FindSubmatch(svg)
	if m == nil {
		t.Fatalf("no viewBox in %s", svg)
	}
	side, _ := strconv.Atoi(string(m[1]))
	black := map[[2]int]bool{}
	for _, mm := range regexp.MustCompile(`M(\d+) (\d+)h1v1h-1z`).FindAllSubmatch(svg, -1) {
		x, _ := strconv.Atoi(string(mm[1]))
		y, _ := strconv.Atoi(string(mm[2]))
		if x < Quiet || y < Quiet || x >= side-Quiet || y >= side-Quiet {
			t.Fatalf("SVG module (%d, %d) in the quiet zone of a %d-module code", x, y, side)
		}
		black[[2]int{x, y}] = true
	}
	if len(black) < side {
		t.Fatalf("SVG has %d black modules", len(black))
	}
	b, err := PNG(url, scale)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r := img.Bounds(); r.Dx() != side*scale || r.Dy() != side*scale {
		t.Fatalf("PNG is %v, want %d px a side", r, side*scale)
	}
	for py := range side * scale {
		for px := range side * scale {
			r, _, _, _ := img.At(px, py).RGBA()
			if want := black[[2]int{px / scale, py / scale}]; (r == 0) != want {
				t.Fatalf("PNG pixel (%d, %d): black %v, want %v", px, py, r == 0, want)
			}
		}
	}
	for _, s := range []int{0, MaxScale + 1} {
		if _, err := PNG(url, s); err == nil {
			t.Fatalf("scale %d accepted", s)
		}
	}
}
