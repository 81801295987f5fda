package accesslog

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"shortfleet/logfmt"
)

// BenchmarkSegmentBytesPerRow appends records shaped like the bench's
// browser visits (bench/wrk/redirects.lua: a browser's User-Agent, Accept,
// Accept-Language, Accept-Encoding and Referer) to an open segment that is
// not sealed before the end, and reports the live heap the writer holds,
// after a full collection, once every row is written: b.N rows, then b.N
// more. heap-bytes/row is the growth between the two over b.N, what each
// further row of an open segment costs in memory beyond its file;
// fixed-heap-bytes is what the writer holds whatever the rows (its column
// builders, kept for reuse). The open segment's file bytes per row are
// reported beside them.
//
//	go test -run '^$' -bench SegmentBytesPerRow -benchtime 200000x ./proxy/internal/accesslog/
func BenchmarkSegmentBytesPerRow(b *testing.B) {
	l, err := Open(Config{Writer: logfmt.WriterConfig{Dir: b.TempDir(), Proxy: "proxy-01",
		SealBytes: 1 << 40, SealAge: time.Hour}}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var ms runtime.MemStats
	heap := func() int64 {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	r := logfmt.Record{
		ClientAddr: []byte("203.0.113.57"), ClientPort: 51234, Method: []byte("GET"), Host: []byte("sho.rt"),
		Proto: []byte("HTTP/1.1"), Status: 302, Cache: "hit", ReplicaLagNS: 1_200_000,
		UserAgent:      []byte("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
		Referrer:       []byte("https://news.ycombinator.com/"),
		AcceptLanguage: []byte("de-CH,de;q=0.9,en;q=0.8"),
		Headers: []logfmt.Header{
			{Name: []byte("Accept"), Value: []byte("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")},
			{Name: []byte("Accept-Encoding"), Value: []byte("gzip, deflate, br")},
		},
	}
	path := make([]byte, 0, 8)
	t0 := time.Now().UnixNano()
	appended := 0
	fill := func(n int) int64 {
		for range n {
			i := appended
			r.Time, r.LinkID, r.LatencyNS = t0+int64(i)*1000, int64(1_000_000+i%100_000), int64(20_000+i%5000)
			path = strconv.AppendInt(append(path[:0], '/'), int64(i%100_000), 36)
			r.Path = path
			l.Append(&r)
			appended++
		}
		for l.Stats().Written+l.Stats().Dropped < uint64(appended) {
			time.Sleep(10 * time.Millisecond) // the next flush interval writes the last batch
		}
		return heap()
	}
	before := heap()
	b.ResetTimer()
	h1 := fill(b.N)
	h2 := fill(b.N)
	b.StopTimer()
	st := l.Stats()
	if st.Dropped > 0 || st.Sealed > 0 {
		b.Fatalf("stats %+v: want every row written to one open segment", st)
	}
	perRow := float64(h2-h1) / float64(b.N)
	b.ReportMetric(perRow, "heap-bytes/row")
	b.ReportMetric(float64(h1-before)-perRow*float64(b.N), "fixed-heap-bytes")
	b.ReportMetric(float64(st.Bytes)/float64(appended), "file-bytes/row")
	runtime.KeepAlive(l)
}
