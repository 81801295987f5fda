package links

import (
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkCacheBytesPerLink fills a cache whose bound holds every entry
// with b.N links of the bench's seeded shape (https://example.com/landing/
// {id}?utm_source=bench, as bench/internal/seed writes them) and reports the live heap
// they added, per link, after a full collection: what a proxy's RSS grows
// by for each cached link, and so what -cache-bytes buys.
//
//	go test -run '^$' -bench CacheBytesPerLink -benchtime 1000000x ./proxy/internal/links/
func BenchmarkCacheBytesPerLink(b *testing.B) {
	target := func(id int64) string {
		return "https://example.com/landing/" + strconv.FormatInt(id, 10) + "?utm_source=bench"
	}
	r, err := New(Config{CacheBytes: 64 << 30}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	before := liveHeap()
	b.ResetTimer()
	for i := range b.N {
		id := int64(1_000_000_000 + i)
		r.fill(id, Entry{ID: id, Type: 302, Target: target(id)}, 0)
	}
	b.StopTimer()
	held := liveHeap() - before
	st := r.Stats()
	if st.CacheEntries != b.N {
		b.Fatalf("cache holds %d entries of %d: its bound evicted", st.CacheEntries, b.N)
	}
	b.ReportMetric(float64(held)/float64(b.N), "heap-bytes/link")
	b.ReportMetric(float64(st.CacheBytes)/float64(b.N), "weighed-bytes/link")
	runtime.KeepAlive(r)
}
