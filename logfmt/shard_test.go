package logfmt

import (
	"sync"
	"testing"
	"time"
)

// TestAppendPastHeldShard: an Append does not wait for a lock another
// Append holds; it fills another shard. With one lock for every Append,
// the Append below waits until the test gives up.
func TestAppendPastHeldShard(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "p"}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	held := &w.shards[0]
	held.mu.Lock()
	done := make(chan struct{})
	go func() {
		w.Append(testRecord(1))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Append waited for a shard another Append holds")
	}
	held.mu.Unlock()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, rows := readFolder(t, dir); len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
}

// TestConcurrentAppendsAllWritten: records appended from many goroutines
// at once, across shards, row flushes, time flushes and seals, are each
// written exactly once, and Close seals the ones still in the shards.
func TestConcurrentAppendsAllWritten(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "p", FlushRows: 37, FlushInterval: time.Millisecond,
		SealBytes: 64 << 10, QueueBatches: 1 << 16}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 1500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := testRecord(i)
				r.LinkID = int64(g*each + i + 1)
				w.Append(r)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, rows := readFolder(t, dir)
	seen := make(map[int64]int, len(rows))
	for _, r := range rows {
		seen[r.LinkID]++
	}
	for id := int64(1); id <= goroutines*each; id++ {
		if seen[id] != 1 {
			t.Fatalf("link %d written %d times, want once", id, seen[id])
		}
	}
	if len(rows) != goroutines*each {
		t.Fatalf("%d rows, want %d", len(rows), goroutines*each)
	}
	st := w.Stats()
	if st.Appended != goroutines*each || st.Written != goroutines*each || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestOneAppenderKeepsOrderThroughCuts: the background goroutine locks
// each shard to cut its batch every FlushInterval. An Append that finds
// its shard held by that cut waits for it rather than filling another
// shard, so one goroutine's records stay in the order it appended them.
// Without the wait, a cut every millisecond sends some of them to a
// second shard, whose batch is written before or after the first's.
func TestOneAppenderKeepsOrderThroughCuts(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "p", FlushRows: 1 << 20, FlushInterval: time.Millisecond,
		QueueBatches: 1 << 16}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	const n = 200_000
	for i := range n {
		r := testRecord(i) // some work between Appends, as a proxy has
		r.LinkID = int64(i + 1)
		w.Append(r)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, rows := readFolder(t, dir)
	if len(rows) != n {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
	for i, row := range rows {
		if row.LinkID != int64(i+1) {
			t.Fatalf("row %d is link %d, want %d: one goroutine's records were reordered", i, row.LinkID, i+1)
		}
	}
}
