package logfmt

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// BenchmarkSeal: sealing one open segment of 65,536 records (546 batches
// of 120, as a proxy at a few hundred requests a second writes them) into
// one compressed batch: the proxy's background work per segment, and the
// sealed segment's size.
func BenchmarkSeal(b *testing.B) {
	dir := b.TempDir()
	open := filepath.Join(dir, "open.arrows.open")
	const n = 1 << 16
	writeOpenSegment(b, open, n, 120)
	alloc := &poolAllocator{noZero: true} // as the Writer seals
	var size int64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("s%d.arrows", i)
		e, err := sealFile(dir, open, name, alloc)
		if err != nil || e.Rows != n {
			b.Fatalf("sealed %d rows, err %v", e.Rows, err)
		}
		os.Remove(filepath.Join(dir, name))
		size = e.Bytes
	}
	b.ReportMetric(float64(size), "sealed-bytes")
}

// writeOpenSegment writes n records to an open segment at path in batches
// of flush rows, their strings varying as a proxy's do: 14 user agents,
// 205 referrers, 13 languages.
func writeOpenSegment(tb testing.TB, path string, n, flush int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	schema := Schema("proxy-01")
	w := ipc.NewWriter(f, ipc.WithSchema(schema))
	var c columns
	c.reset()
	for i := range n {
		r := testRecord(i)
		r.UserAgent = fmt.Appendf(nil, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/13%d.0.0.0 Safari/537.36", i%14)
		r.Referrer = fmt.Appendf(nil, "https://site%d.example/article/%d", i%205, i%205*7)
		r.AcceptLanguage = fmt.Appendf(nil, "en-US,en;q=0.%d", i%13)
		c.append("proxy-01", r)
		if c.rows == flush || i == n-1 {
			rec := c.record(schema)
			if err := w.Write(rec); err != nil {
				tb.Fatal(err)
			}
			rec.Release()
			c.reset()
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkColumnsAppend: copying one record, shaped as bench-proxy's
// (a browser's user agent, language and referrer, two more headers), into
// a batch's columns (Append's work under its lock), and its share of
// making a batch of 4096 such rows a record (the writer goroutine's).
func BenchmarkColumnsAppend(b *testing.B) {
	schema := Schema("proxy-01")
	r := testRecord(3)
	r.UserAgent = []byte("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	r.Referrer = []byte("https://news.example.com/article/12345")
	r.AcceptLanguage = []byte("en-US,en;q=0.9")
	r.Headers = []Header{
		{Name: []byte("Accept"), Value: []byte("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")},
		{Name: []byte("Accept-Encoding"), Value: []byte("gzip, deflate, br")},
	}
	var c columns
	c.reset()
	b.ReportAllocs()
	for b.Loop() {
		c.append("proxy-01", r)
		if c.rows == 4096 {
			c.record(schema).Release()
			c.reset()
		}
	}
}
