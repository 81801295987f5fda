package job

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"shortfleet/logfmt"
)

var t0 = time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)

// segmentOf writes records with a real writer, in batches of flushRows,
// and returns the sealed segment's bytes.
func segmentOf(t testing.TB, recs []logfmt.Record, flushRows int) []byte {
	t.Helper()
	dir := t.TempDir()
	w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "p", FlushRows: flushRows, QueueBatches: len(recs)/flushRows + 2}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		w.Append(&recs[i])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := logfmt.ReadManifest(dir)
	data, err := os.ReadFile(filepath.Join(dir, entries[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func rec(at time.Time, link int64, status uint16) logfmt.Record {
	return logfmt.Record{Time: at.UnixNano(), LinkID: link, Status: status}
}

func TestMap(t *testing.T) {
	data := segmentOf(t, []logfmt.Record{
		rec(t0, 1, 302),
		rec(t0.Add(59*time.Minute+59*time.Second), 1, 301),
		rec(t0.Add(time.Hour), 1, 307),
		rec(t0, 2, 308),
		rec(t0, 0, 404),               // not a link
		rec(t0, 3, 410),               // disabled: not a click
		rec(t0, 4, 503),               // error: not a click
		rec(t0, 5, 200),               // not a redirect
		rec(time.Unix(-1, 0), 6, 302), // before 1970 floors to the hour below
	}, 3)
	rd, err := logfmt.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	var keys []Key
	for rd.Next() {
		keys = Map(rd.Batch(), keys)
	}
	h := t0.Unix()
	want := []Key{{1, h}, {1, h}, {1, h + 3600}, {2, h}, {6, -3600}}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("got %v, want %v", keys, want)
	}
}

func TestCombine(t *testing.T) {
	c := Counts{{1, 0}: 2}
	Combine(c, []Key{{1, 0}, {1, 3600}, {2, 0}, {1, 0}})
	want := Counts{{1, 0}: 4, {1, 3600}: 1, {2, 0}: 1}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %v, want %v", c, want)
	}
}

func TestPartition(t *testing.T) {
	c := Counts{}
	for link := int64(1); link <= 1000; link++ {
		c[Key{link, 0}] = link
		c[Key{link, 3600}] = 1
	}
	parts := Partition(c, 8)
	if len(parts) != 8 {
		t.Fatalf("%d parts", len(parts))
	}
	owner := map[int64]int{}
	var sum, n int64
	for p, part := range parts {
		if len(part) < 100 {
			t.Errorf("partition %d holds %d keys of 2000: uneven", p, len(part))
		}
		for k, v := range part {
			if o, ok := owner[k.LinkID]; ok && o != p {
				t.Fatalf("link %d in partitions %d and %d", k.LinkID, o, p)
			}
			owner[k.LinkID] = p
			sum += v
			n++
		}
	}
	if n != 2000 || sum != 1000*1001/2+1000 {
		t.Fatalf("partitions hold %d keys summing %d", n, sum)
	}
}

func TestReduce(t *testing.T) {
	got := Reduce([]Counts{{{1, 0}: 2, {2, 0}: 1}, {}, {{1, 0}: 3, {3, 7200}: 9}})
	want := Counts{{1, 0}: 5, {2, 0}: 1, {3, 7200}: 9}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := Reduce(nil); len(got) != 0 {
		t.Fatalf("reduce of nothing: %v", got)
	}
}

func TestMapCombine(t *testing.T) {
	var recs []logfmt.Record
	for i := range 100 {
		recs = append(recs, rec(t0.Add(time.Duration(i)*time.Minute), int64(i%3+1), 302))
	}
	recs = append(recs, rec(t0, 0, 404))
	c, n, err := MapCombine(segmentOf(t, recs, 3))
	if err != nil || n != 101 {
		t.Fatalf("%d records, %v", n, err)
	}
	var total int64
	for _, v := range c {
		total += v
	}
	if total != 100 || len(c) != 6 { // 3 links x 2 hours
		t.Fatalf("total %d over %d keys: %v", total, len(c), c)
	}
}

func BenchmarkMapCombine(b *testing.B) {
	var recs []logfmt.Record
	for i := range 50_000 {
		recs = append(recs, rec(t0.Add(time.Duration(i)*time.Second), int64(i%5000+1), 302))
	}
	data := segmentOf(b, recs, 4096)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := MapCombine(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
