package logfmt

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// TestVersion1OpenSegmentSealsAsVersion2: an open segment a proxy wrote
// before its upgrade (version 1, no rule column) is repaired and sealed
// as version 2, and reads with Rule 0; the writer's own segments are
// version 3, sealed as 4, and keep each record's rule.
func TestVersion1OpenSegmentSealsAsVersion2(t *testing.T) {
	dir := t.TempDir()
	var c columns
	c.reset()
	for i := range 10 {
		c.append("proxy-01", testRecord(i))
	}
	v3 := c.record(schemaOf(Version, "proxy-01"))
	defer v3.Release()
	v1 := array.NewRecordBatch(schemaOf(1, "proxy-01"), v3.Columns()[:ColRule], v3.NumRows())
	defer v1.Release()
	name := segmentName(time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC))
	f, err := os.Create(filepath.Join(dir, name+openSuffix))
	if err != nil {
		t.Fatal(err)
	}
	w := ipc.NewWriter(f, ipc.WithSchema(v1.Schema()))
	if err := w.Write(v1); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
	if _, err := Repair(dir, quietLogger()); err != nil {
		t.Fatal(err)
	}
	entries, rows := readFolder(t, dir)
	if len(entries) != 1 || entries[0].Version != 2 || len(rows) != 10 {
		t.Fatalf("sealed %+v with %d rows, want one version 2 segment of 10", entries, len(rows))
	}
	for i, r := range rows {
		want := wantRow("proxy-01", testRecord(i))
		want.Rule = 0
		if r.Path != want.Path || r.Rule != 0 {
			t.Fatalf("row %d: %+v", i, r)
		}
	}

	dir = t.TempDir()
	wr, err := NewWriter(WriterConfig{Dir: dir, Proxy: "proxy-01", FlushRows: 4}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		wr.Append(testRecord(i))
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	entries, rows = readFolder(t, dir)
	if len(entries) != 1 || entries[0].Version != SealedVersion {
		t.Fatalf("writer sealed %+v, want version %d", entries, SealedVersion)
	}
	rules := 0
	for i, r := range rows {
		if r.Rule != testRecord(i).Rule {
			t.Fatalf("row %d: rule %d, want %d", i, r.Rule, testRecord(i).Rule)
		}
		if r.Rule != 0 {
			rules++
		}
	}
	if rules == 0 {
		t.Fatal("no test record has a rule")
	}
}
