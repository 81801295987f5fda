package logfmt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var update = flag.Bool("update", false, "write testdata/vN.arrows of the sealed format version, if it is not released yet")

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testRecord is record i of a deterministic sequence exercising every column.
func testRecord(i int) *Record {
	r := &Record{
		Time:           time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC).UnixNano() + int64(i)*int64(time.Millisecond),
		ClientAddr:     []byte(fmt.Sprintf("192.0.2.%d", i%250)),
		ClientPort:     uint16(40000 + i),
		Method:         []byte("GET"),
		Host:           []byte("sho.rt"),
		Path:           []byte(fmt.Sprintf("/c%06d", i)),
		Query:          []byte("utm_source=x"),
		Proto:          []byte("HTTP/1.1"),
		Status:         302,
		LinkID:         int64(i + 1),
		LatencyNS:      int64(1000 + i),
		Cache:          CacheReplica,
		ReplicaLagNS:   -1,
		UserAgent:      []byte("Mozilla/5.0 (X11; Linux x86_64)"),
		Referrer:       []byte("https://news.example/"),
		AcceptLanguage: []byte("de-CH, en;q=0.8"),
		Headers: []Header{
			{Name: []byte("Host"), Value: []byte("sho.rt")},
			{Name: []byte("X-Odd"), Value: []byte(fmt.Sprint(i))},
		},
	}
	if i%5 == 2 {
		r.Rule = uint8(i%3 + 1) // a redirect rule answered
	}
	if i%7 == 0 {
		r.Status, r.LinkID, r.Cache, r.Rule = 404, 0, CacheMiss, 0
		r.Headers = nil
	}
	return r
}

// wantRow is what reading record i back must give.
func wantRow(proxy string, r *Record) Row {
	row := Row{
		Time: r.Time, Proxy: proxy, ClientAddr: string(r.ClientAddr), ClientPort: r.ClientPort,
		Method: string(r.Method), Host: string(r.Host), Path: string(r.Path), Query: string(r.Query),
		Proto: string(r.Proto), Status: r.Status, LinkID: r.LinkID, LatencyNS: r.LatencyNS,
		Cache: r.Cache, ReplicaLagNS: r.ReplicaLagNS, UserAgent: string(r.UserAgent),
		Referrer: string(r.Referrer), AcceptLanguage: string(r.AcceptLanguage), Rule: r.Rule,
	}
	for _, h := range r.Headers {
		row.Headers = append(row.Headers, [2]string{string(h.Name), string(h.Value)})
	}
	return row
}

// readFolder reads every sealed segment of a folder in manifest order,
// checking each against its manifest line.
func readFolder(t *testing.T, dir string) ([]Entry, []Row) {
	t.Helper()
	entries, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != e.Bytes || hex.EncodeToString(sum[:]) != e.SHA256 {
			t.Fatalf("segment %s: %d bytes sha %x, manifest says %d bytes sha %s", e.Name, len(data), sum, e.Bytes, e.SHA256)
		}
		got, err := ReadAll(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("read %s: %v", e.Name, err)
		}
		if int64(len(got)) != e.Rows {
			t.Fatalf("segment %s: %d rows, manifest says %d", e.Name, len(got), e.Rows)
		}
		rows = append(rows, got...)
	}
	return entries, rows
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "proxy-01", FlushRows: 100}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	var want []Row
	for i := range 1000 {
		r := testRecord(i)
		want = append(want, wantRow("proxy-01", r))
		w.Append(r)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, got := readFolder(t, dir)
	if len(entries) != 1 {
		t.Fatalf("%d segments, want 1", len(entries))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows differ; first got %+v want %+v", got[0], want[0])
	}
	st := w.Stats()
	if st.Appended != 1000 || st.Written != 1000 || st.Dropped != 0 || st.Sealed != 1 {
		t.Fatalf("stats %+v", st)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.open")); len(left) != 0 {
		t.Fatalf("open segments left after Close: %v", left)
	}
}

func TestInvalidUTF8Replaced(t *testing.T) {
	dir := t.TempDir()
	w, _ := NewWriter(WriterConfig{Dir: dir, Proxy: "p"}, quietLogger())
	r := testRecord(1)
	r.UserAgent = []byte("bad\xff\xfeagent")
	r.Path = []byte("/\xc3")
	r.Headers = []Header{{Name: []byte("X-\x80"), Value: []byte("v\xe2\x82")}}
	w.Append(r)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, rows := readFolder(t, dir)
	if got := rows[0].UserAgent; got != "bad\uFFFDagent" {
		t.Errorf("user agent %q", got)
	}
	if got := rows[0].Path; got != "/\uFFFD" {
		t.Errorf("path %q", got)
	}
	if got := rows[0].Headers[0]; got != [2]string{"X-\uFFFD", "v\uFFFD"} {
		t.Errorf("header %q", got)
	}
}

// TestBatchesAndSealing checks the row and size triggers: batches of
// FlushRows rows, and a new segment whenever SealBytes is passed.
func TestBatchesAndSealing(t *testing.T) {
	dir := t.TempDir()
	w, _ := NewWriter(WriterConfig{Dir: dir, Proxy: "p", FlushRows: 10, FlushInterval: time.Hour, SealBytes: 20 << 10, QueueBatches: 1000}, quietLogger())
	for i := range 2000 {
		w.Append(testRecord(i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, rows := readFolder(t, dir)
	if len(rows) != 2000 {
		t.Fatalf("%d rows, want 2000", len(rows))
	}
	if len(entries) < 3 {
		t.Fatalf("%d segments, want several at SealBytes=20KiB", len(entries))
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Name <= entries[i-1].Name {
			t.Fatalf("segment names not ascending: %s then %s", entries[i-1].Name, entries[i].Name)
		}
	}
	f, _ := os.Open(filepath.Join(dir, entries[0].Name))
	defer f.Close()
	rd, err := NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	// Sealing compacted the open segment's 10-row batches into one.
	batches := 0
	for rd.Next() {
		batches++
		if n := int64(rd.Batch().Len()); n != entries[0].Rows {
			t.Fatalf("sealed batch of %d rows, want all %d", n, entries[0].Rows)
		}
	}
	if batches != 1 {
		t.Fatalf("%d batches in a sealed segment of %d rows, want 1", batches, entries[0].Rows)
	}
}

// TestFlushAndSealByTime checks the time triggers without sleeping a fixed
// time: it waits (bounded) until the background goroutine acts.
func TestFlushAndSealByTime(t *testing.T) {
	dir := t.TempDir()
	w, _ := NewWriter(WriterConfig{Dir: dir, Proxy: "p", FlushInterval: 10 * time.Millisecond, SealAge: 50 * time.Millisecond}, quietLogger())
	defer w.Close()
	w.Append(testRecord(1))
	waitFor(t, func() bool { return w.Stats().Written == 1 })
	waitFor(t, func() bool { return w.Stats().Sealed == 1 })
	_, rows := readFolder(t, dir)
	if len(rows) != 1 {
		t.Fatalf("%d rows sealed by age, want 1", len(rows))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// crashedFolder writes batches of 10 rows to an open segment and returns a
// copy of the folder as a crash would leave it, with the open segment and
// the byte offsets where each batch ends.
func crashedFolder(t *testing.T, batches int) (dir string, open string, ends []int64) {
	t.Helper()
	dir = t.TempDir()
	w, _ := NewWriter(WriterConfig{Dir: dir, Proxy: "p", FlushRows: 10, FlushInterval: time.Hour, SealAge: time.Hour}, quietLogger())
	for b := range batches {
		for i := range 10 {
			w.Append(testRecord(b*10 + i))
		}
		waitFor(t, func() bool { return w.Stats().Written == uint64((b+1)*10) })
		opens, _ := filepath.Glob(filepath.Join(dir, "*.open"))
		st, _ := os.Stat(opens[0])
		ends = append(ends, st.Size())
		open = opens[0]
	}
	data, err := os.ReadFile(open)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	crash := t.TempDir()
	open = filepath.Join(crash, filepath.Base(open))
	if err := os.WriteFile(open, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return crash, open, ends
}

// TestTornTailRecovered cuts an open segment throughout its last batch (at
// every byte near the batch's edges, every 13th inside), as a crash
// mid-write would, and checks the next writer's start-up seals exactly the
// whole batches before the cut.
func TestTornTailRecovered(t *testing.T) {
	_, open, ends := crashedFolder(t, 3)
	data, _ := os.ReadFile(open)
	for cut := ends[1] - 3; cut <= ends[2]; cut++ {
		if cut > ends[1]+64 && cut < ends[2]-64 && cut%13 != 0 {
			continue
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(open)), data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "p"}, quietLogger())
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		w.Close()
		want := 20
		switch {
		case cut == ends[2]:
			want = 30
		case cut < ends[1]:
			want = 10
		}
		if st := w.Stats(); st.Recovered != uint64(want) {
			t.Fatalf("cut at %d: recovered %d, want %d", cut, st.Recovered, want)
		}
		_, rows := readFolder(t, dir)
		if len(rows) != want {
			t.Fatalf("cut at %d: %d rows readable, want %d", cut, len(rows), want)
		}
		for i, r := range rows {
			if r.Path != string(testRecord(i).Path) {
				t.Fatalf("cut at %d: row %d is %s", cut, i, r.Path)
			}
		}
	}
}

// TestOpenWithoutBatchRemoved: a segment torn inside its schema message held
// no records and is removed.
func TestOpenWithoutBatchRemoved(t *testing.T) {
	_, open, _ := crashedFolder(t, 1)
	data, _ := os.ReadFile(open)
	dir := t.TempDir()
	p := filepath.Join(dir, filepath.Base(open))
	os.WriteFile(p, data[:20], 0o644)
	if _, err := Repair(dir, quietLogger()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("open segment without a batch still there: %v", err)
	}
}

// TestManifestRepair: a torn manifest line is dropped and its segment
// re-entered; a sealed segment missing from the manifest is entered.
func TestManifestRepair(t *testing.T) {
	dir := t.TempDir()
	w, _ := NewWriter(WriterConfig{Dir: dir, Proxy: "p", SealBytes: 4 << 10, FlushRows: 10, QueueBatches: 1000}, quietLogger())
	for i := range 300 {
		w.Append(testRecord(i))
	}
	w.Close()
	before, rowsBefore := readFolder(t, dir)
	if len(before) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(before))
	}
	manifest := filepath.Join(dir, ManifestName)
	data, _ := os.ReadFile(manifest)
	lines := strings.SplitAfter(string(data), "\n")
	// Drop the second line entirely and tear the last one.
	torn := lines[0] + strings.Join(lines[2:len(lines)-2], "") + lines[len(lines)-2][:30]
	os.WriteFile(manifest, []byte(torn), 0o644)
	if _, err := Repair(dir, quietLogger()); err != nil {
		t.Fatal(err)
	}
	after, rowsAfter := readFolder(t, dir)
	if len(after) != len(before) || len(rowsAfter) != len(rowsBefore) {
		t.Fatalf("after repair %d segments %d rows, want %d and %d", len(after), len(rowsAfter), len(before), len(rowsBefore))
	}
	// A garbage manifest is rebuilt from the segments.
	os.WriteFile(manifest, []byte("{not json}\n"), 0o644)
	if _, err := Repair(dir, quietLogger()); err != nil {
		t.Fatal(err)
	}
	if again, _ := readFolder(t, dir); len(again) != len(before) {
		t.Fatalf("rebuilt manifest has %d segments, want %d", len(again), len(before))
	}
}

// writeForeign writes an Arrow stream with the given schema metadata.
func writeForeign(t *testing.T, md map[string]string, fields []arrow.Field) []byte {
	t.Helper()
	m := arrow.MetadataFrom(md)
	schema := arrow.NewSchema(fields, &m)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

func TestReaderRejects(t *testing.T) {
	v1 := Schema("p")
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"future version", writeForeign(t, map[string]string{MetaVersion: "5"}, fieldsV1), ErrUnknownVersion},
		// Only a whole number above every known version is a newer format,
		// which an upgraded reader will take; anything else is damage.
		{"not a number", writeForeign(t, map[string]string{MetaVersion: "one"}, fieldsV1), ErrCorrupt},
		{"zero", writeForeign(t, map[string]string{MetaVersion: "0"}, fieldsV1), ErrCorrupt},
		{"negative", writeForeign(t, map[string]string{MetaVersion: "-3"}, fieldsV1), ErrCorrupt},
		{"signed", writeForeign(t, map[string]string{MetaVersion: "+3"}, fieldsV1), ErrCorrupt},
		{"no version", writeForeign(t, nil, fieldsV1), ErrCorrupt},
		{"wrong columns", writeForeign(t, map[string]string{MetaVersion: "1"}, v1.Fields()[:3]), ErrCorrupt},
		{"garbage", []byte("this is not an arrow stream at all"), ErrCorrupt},
		{"empty", nil, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadAll(bytes.NewReader(tc.data))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestTestdata reads a segment of every format version from testdata,
// forever: a version once written is never changed, and the files of
// released versions must match their pinned checksums. v1.arrows was
// sealed when sealing wrote version 1. -update writes the file of the
// version sealing writes now, only while it is not released.
func TestTestdata(t *testing.T) {
	// Open segments never leave their proxy, so only sealed versions have
	// testdata (v1.arrows is of the time sealing wrote version 1).
	versions := []int{SealedVersion}
	for v := range releasedTestdata {
		if !slices.Contains(versions, v) {
			versions = append(versions, v)
		}
	}
	slices.Sort(versions)
	for _, version := range versions {
		path := filepath.Join("testdata", fmt.Sprintf("v%d.arrows", version))
		if *update && version == SealedVersion {
			if err := writeTestdata(path, version); err != nil {
				t.Fatalf("-update %s: %v", path, err)
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if pin, ok := releasedTestdata[version]; !ok {
			t.Logf("%s: version %d is not released yet; pin its checksum in releasedTestdata when it is", path, version)
		} else if got := hex.EncodeToString(sum[:]); got != pin {
			t.Fatalf("%s has SHA-256 %s, want the released %s: released testdata is frozen", path, got, pin)
		}
		rd, err := NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if rd.Version() != version || rd.Proxy() != "proxy-01" {
			t.Fatalf("%s: version %d proxy %q", path, rd.Version(), rd.Proxy())
		}
		rd.Release()
		rows, err := ReadAll(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 20 {
			t.Fatalf("%s: %d rows, want 20", path, len(rows))
		}
		for i, got := range rows {
			want := wantRow("proxy-01", testRecord(i))
			if version < 3 {
				want.Rule = 0 // no rule column before version 3
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: row %d:\n got %+v\nwant %+v", path, i, got, want)
			}
		}
		testStandardReader(t, data, 20)
	}
}

// releasedTestdata pins the SHA-256 of every released format version's
// testdata segment. A version once written never changes, and neither does
// its file: TestTestdata fails if one differs, and -update refuses to write
// one. A new version's file is pinned here when the version is released.
var releasedTestdata = map[int]string{
	1: "2d7a2bddcf7516e47e00af8bd9306ee9e312458d54e4b166d779685ad4819948",
	2: "d98f05625c7639814899ff14e615ab9205c703c54d7bce9cf752abbc6d3e9739",
}

// writeTestdata seals the 20 test records in the format version sealing
// writes now and writes the segment to path, which -update does for a
// version not yet released. It refuses a released version, whatever the
// writer now makes of it.
func writeTestdata(path string, version int) error {
	if _, ok := releasedTestdata[version]; ok {
		return fmt.Errorf("version %d is released and its testdata frozen: -update writes only a version not yet released", version)
	}
	if version != SealedVersion {
		return fmt.Errorf("sealing writes version %d, not %d", SealedVersion, version)
	}
	dir, err := os.MkdirTemp("", "logfmt-testdata")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "proxy-01", FlushRows: 8}, quietLogger())
	if err != nil {
		return err
	}
	for i := range 20 {
		w.Append(testRecord(i))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("seal the test records: %w", err)
	}
	entries, err := ReadManifest(dir)
	if err != nil {
		return err
	}
	if len(entries) != 1 || entries[0].Version != version {
		return fmt.Errorf("sealing the test records gave %+v, want one version %d segment", entries, version)
	}
	data, err := os.ReadFile(filepath.Join(dir, entries[0].Name))
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// TestReleasedTestdataFrozen: the -update path refuses to write the
// testdata of a released version, leaving the file as it was, and
// refuses a version sealing does not write.
func TestReleasedTestdataFrozen(t *testing.T) {
	for version := range releasedTestdata {
		name := fmt.Sprintf("v%d.arrows", version)
		released, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, released, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := writeTestdata(path, version); err == nil {
			t.Errorf("-update wrote the testdata of released version %d", version)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, released) {
			t.Errorf("-update rewrote the testdata of released version %d", version)
		}
	}
	path := filepath.Join(t.TempDir(), "v0.arrows")
	if err := writeTestdata(path, SealedVersion+1); err == nil {
		t.Errorf("-update wrote version %d, which sealing does not write", SealedVersion+1)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("-update wrote %s: %v", path, err)
	}
}

// testStandardReader opens a segment with arrow-go's plain IPC reader,
// without this package: the format is standard Arrow.
func testStandardReader(t *testing.T, data []byte, rows int) {
	t.Helper()
	r, err := ipc.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	n := 0
	for r.Next() {
		n += int(r.RecordBatch().NumRows())
	}
	if r.Err() != nil || n != rows {
		t.Fatalf("plain reader read %d rows, err %v; want %d", n, r.Err(), rows)
	}
}

// TestSealedDictionaries seals more records than one batch holds: each
// batch of the sealed segment has dictionaries of its own, which every
// reader, arrow-go's plain one among them, reads back as the records.
func TestSealedDictionaries(t *testing.T) {
	n := compactRows + compactRows/2
	record := func(i int) *Record {
		r := testRecord(i)
		r.UserAgent = fmt.Appendf(nil, "agent %d", i%37)
		r.Referrer = fmt.Appendf(nil, "https://r%d.example/", i%101)
		if i%3 == 0 {
			r.AcceptLanguage = nil
		}
		return r
	}
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "proxy-01", FlushRows: 1000}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		w.Append(record(i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := ReadManifest(dir)
	if len(entries) != 1 || entries[0].Version != SealedVersion {
		t.Fatalf("manifest %+v: want one segment of version %d", entries, SealedVersion)
	}
	data, err := os.ReadFile(filepath.Join(dir, entries[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	rd, err := NewBytesReader(data)
	if err != nil {
		t.Fatal(err)
	}
	if rd.Version() != SealedVersion {
		t.Fatalf("sealed version %d, want %d", rd.Version(), SealedVersion)
	}
	var distinct [][3]int
	for rd.Next() {
		var d [3]int
		for j, c := range []*Strings{&rd.Batch().UserAgent, &rd.Batch().Referrer, &rd.Batch().AcceptLanguage} {
			values, idx, ok := c.Dictionary()
			if !ok || len(idx) != rd.Batch().Len() {
				t.Fatalf("batch %d: a sealed string column is not dictionary-encoded", len(distinct))
			}
			d[j] = values.Len()
		}
		distinct = append(distinct, d)
	}
	rd.Release()
	if want := [3]int{37, 101, 2}; len(distinct) != 2 || distinct[0] != want || distinct[1] != want {
		t.Fatalf("distinct values by batch %v, want two batches of %v", distinct, want)
	}
	rows, err := ReadAll(bytes.NewReader(data))
	if err != nil || len(rows) != n {
		t.Fatalf("%d rows, err %v; want %d", len(rows), err, n)
	}
	for i, got := range rows {
		if want := wantRow("proxy-01", record(i)); !reflect.DeepEqual(got, want) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	if stock, err := readAllStock(data); err != nil || !reflect.DeepEqual(stock, rows) {
		t.Fatalf("arrow-go's plain reader: %d rows, err %v", len(stock), err)
	}
	testStandardReader(t, data, n)
}

func TestParseManifest(t *testing.T) {
	good := `{"name":"20261122T133000.000000001Z.arrows","version":1,"rows":3,"bytes":100,"sha256":"` + strings.Repeat("ab", 32) + `","min_time_ns":1,"max_time_ns":2}`
	for _, tc := range []struct {
		name    string
		in      string
		entries int
		wantErr bool
	}{
		{"empty", "", 0, false},
		{"one", good + "\n", 1, false},
		{"torn last", good + "\n" + good[:40], 1, false},
		{"blank lines", "\n" + good + "\n\n", 1, false},
		{"bad json", "{\n", 0, true},
		{"unknown field", strings.Replace(good, `"rows"`, `"rowz"`, 1) + "\n", 0, true},
		{"bad name", strings.Replace(good, "20261122", "../../x", 1) + "\n", 0, true},
		{"bad sha", strings.Replace(good, "abab", "zz", 1) + "\n", 0, true},
		{"trailing", good + good + "\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseManifest(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr || len(got) != tc.entries {
				t.Fatalf("got %d entries, err %v; want %d, error %v", len(got), err, tc.entries, tc.wantErr)
			}
		})
	}
}

func FuzzReader(f *testing.F) {
	for _, name := range []string{"v1.arrows", "v2.arrows"} {
		if data, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(data)
			f.Add(data[:len(data)/2])
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		stop := time.AfterFunc(10*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic(fmt.Sprintf("reader hung on %q\n%s", data, buf[:runtime.Stack(buf, true)]))
		})
		defer stop.Stop()
		rows, err := ReadAll(bytes.NewReader(data))
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownVersion) {
			t.Fatalf("error %v is neither ErrCorrupt nor ErrUnknownVersion", err)
		}
		// Read in place, the same bytes give the same rows or error.
		inPlace, err2 := readAllBytes(data)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(rows, inPlace) {
			t.Fatalf("stream: %d rows, err %v; in place: %d rows, err %v", len(rows), err, len(inPlace), err2)
		}
		if err == nil {
			// What the inflater accepts, arrow-go's own decompression
			// reads alike.
			if stock, err := readAllStock(data); err != nil || !reflect.DeepEqual(rows, stock) {
				t.Fatalf("arrow-go's plain reader: %d rows, err %v; ours: %d rows", len(stock), err, len(rows))
			}
			// A read of some columns gives those columns alike.
			cols := []int{ColTime, ColClientAddr, ColStatus, ColLinkID, ColUserAgent, ColReferrer, ColAcceptLanguage}
			rd, err := NewColumnsReader(data, cols...)
			if err != nil {
				t.Fatalf("whole read fine, read of columns %v: %v", cols, err)
			}
			some, err := rd.readAll()
			if err != nil || len(some) != len(rows) {
				t.Fatalf("whole read fine, read of columns %v: %d rows of %d, err %v", cols, len(some), len(rows), err)
			}
			for i := range some {
				if want := projected(rows[i], cols); !reflect.DeepEqual(some[i], want) {
					t.Fatalf("columns %v, row %d:\n got %+v\nwant %+v", cols, i, some[i], want)
				}
			}
		}
		_, _ = wholePrefix(bytes.NewReader(data))
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"name":"20261122T133000.000000001Z.arrows","version":1,"rows":3,"bytes":100,"sha256":"` + strings.Repeat("ab", 32) + `","min_time_ns":1,"max_time_ns":2}` + "\n"))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, e := range entries {
			if err := e.Validate(); err != nil {
				t.Fatalf("accepted invalid entry %+v: %v", e, err)
			}
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	w, _ := NewWriter(WriterConfig{Dir: b.TempDir(), Proxy: "p"}, quietLogger())
	r := testRecord(1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Append(r)
		}
	})
	b.StopTimer()
	w.Close()
}

func BenchmarkAppendSerial(b *testing.B) {
	w, _ := NewWriter(WriterConfig{Dir: b.TempDir(), Proxy: "p"}, quietLogger())
	r := testRecord(1)
	b.ReportAllocs()
	for b.Loop() {
		w.Append(r)
	}
	b.StopTimer()
	w.Close()
}
