package store

import "testing"

// FuzzListOptions: whatever page and per_page a query string holds, the
// list reads a bounded page at a non-negative offset.
func FuzzListOptions(f *testing.F) {
	for _, p := range [][2]int{{0, 0}, {1, 50}, {-5, 1000}, {1 << 62, 500}, {9223372036854775807, 50}, {2, -1}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, page, perPage int) {
		o := ListOptions{Page: page, PerPage: perPage}.normalized()
		if o.PerPage < 1 || o.PerPage > 500 || o.Page < 1 || o.Page > MaxPage {
			t.Fatalf("page %d per_page %d -> %+v", page, perPage, o)
		}
		if off := (o.Page - 1) * o.PerPage; off < 0 || off/o.PerPage != o.Page-1 {
			t.Fatalf("page %d per_page %d: offset %d", page, perPage, off)
		}
	})
}
