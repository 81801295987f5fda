// Package qrcode draws a short URL's QR code, as SVG for the web UI and
// the API, and as PNG for the API: one encoding (rsc.io/qr, level M) and
// one quiet zone for both, so the two images are the same code.
package qrcode

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	"rsc.io/qr"
)

// Quiet is the white margin around the code, in modules: the 4 the QR
// standard asks for, which scanners need to find the code.
const Quiet = 4

// MaxScale bounds the pixels a module of a PNG takes.
const MaxScale = 32

// SVG draws url's QR code as SVG, one unit a module.
func SVG(url string) ([]byte, error) {
	code, err := qr.Encode(url, qr.M)
	if err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	size := code.Size + 2*Quiet
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges"><rect width="100%%" height="100%%" fill="#fff"/><path fill="#000" d="`, size, size)
	for y := range code.Size {
		for x := range code.Size {
			if code.Black(x, y) {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x+Quiet, y+Quiet)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return []byte(b.String()), nil
}

// PNG draws url's QR code as a grayscale PNG, scale pixels a module
// (1 to MaxScale).
func PNG(url string, scale int) ([]byte, error) {
	if scale < 1 || scale > MaxScale {
		return nil, fmt.Errorf("QR code scale %d: want 1 to %d", scale, MaxScale)
	}
	code, err := qr.Encode(url, qr.M)
	if err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	side := (code.Size + 2*Quiet) * scale
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y := range code.Size {
		for x := range code.Size {
			if !code.Black(x, y) {
				continue
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray((x+Quiet)*scale+dx, (y+Quiet)*scale+dy, color.Gray{})
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}
