package logfmt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// v2Batch writes a version 2 segment of one batch of rows testRecords,
// whose user_agent column is dictionary values, indexed by at; valid, if
// not nil, is the indices' validity bitmap.
func v2Batch(t *testing.T, rows int, values []string, at []int32, valid []byte) []byte {
	t.Helper()
	var c columns
	c.reset()
	for i := range rows {
		c.append("proxy-01", testRecord(i))
	}
	plain := c.record(Schema("proxy-01"))
	defer plain.Release()
	var dict strCol
	dict.reset()
	for _, v := range values {
		dict.appendString(v)
	}
	var validity *memory.Buffer
	nulls := 0
	if valid != nil {
		validity = memory.NewBufferBytes(valid)
		nulls = array.UnknownNullCount
	}
	idx := array.MakeFromData(array.NewData(arrow.PrimitiveTypes.Int32, len(at),
		[]*memory.Buffer{validity, memory.NewBufferBytes(sliceBytes(at))}, nil, nulls, 0))
	defer idx.Release()
	vals := array.MakeFromData(dict.arrayData())
	defer vals.Release()
	ua := array.NewDictionaryArray(dictString, idx, vals)
	defer ua.Release()
	enc := newDictEncoder()
	cols := slices.Clone(plain.Columns())
	cols[ColUserAgent] = ua
	for _, c := range []int{ColReferrer, ColAcceptLanguage} {
		a, err := enc.encode([]arrow.Array{plain.Column(c)})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release()
		cols[c] = a
	}
	schema := schemaOf(SealedVersion, "proxy-01")
	rec := array.NewRecordBatch(schema, cols, int64(rows))
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithZstd())
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDictionaryRejects: a dictionary index out of range, or null, is
// ErrCorrupt for every reader, whole or projected; the same segment with
// sound indices reads.
func TestDictionaryRejects(t *testing.T) {
	values := []string{"agent a", "agent b"}
	good := v2Batch(t, 3, values, []int32{0, 1, 0}, nil)
	if rows, err := ReadAll(bytes.NewReader(good)); err != nil || len(rows) != 3 || rows[1].UserAgent != "agent b" {
		t.Fatalf("sound segment: %d rows, err %v", len(rows), err)
	}
	for name, data := range map[string][]byte{
		"index past the values": v2Batch(t, 3, values, []int32{0, 2, 0}, nil),
		"negative index":        v2Batch(t, 3, values, []int32{0, -1, 0}, nil),
		"null index":            v2Batch(t, 3, values, []int32{0, 0, 0}, []byte{0b101}),
	} {
		if _, err := ReadAll(bytes.NewReader(data)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: whole read got %v, want ErrCorrupt", name, err)
		}
		rd, err := NewColumnsReader(data, ColUserAgent)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rd.readAll(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: read of the column got %v, want ErrCorrupt", name, err)
		}
	}
}

// TestPlainBounded: a small segment whose one long dictionary value every
// row repeats would spell out to more than a reader may allocate; Plain
// says so instead of building it.
func TestPlainBounded(t *testing.T) {
	long := strings.Repeat("x", 64<<10)
	rows := maxAlloc/len(long) + 1
	data := v2Batch(t, rows, []string{long}, make([]int32, rows), nil)
	if len(data) > 1<<20 {
		t.Fatalf("segment of %d bytes, meant to be small", len(data))
	}
	rd, err := NewBytesReader(data)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() {
		t.Fatal(rd.Err())
	}
	if rec, err := rd.Batch().Plain(); !errors.Is(err, ErrCorrupt) {
		if rec != nil {
			rec.Release()
		}
		t.Fatalf("Plain of %d rows of 64 KiB: got %v, want ErrCorrupt", rows, err)
	}
	small := v2Batch(t, 3, []string{"a", "b"}, []int32{1, 0, 1}, nil)
	rd2, err := NewBytesReader(small)
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Release()
	rd2.Next()
	rec, err := rd2.Batch().Plain()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if got := rec.Column(ColUserAgent).(*array.String); got.Value(0) != "b" || got.Value(1) != "a" || rec.Schema().Field(ColUserAgent).Type.ID() != arrow.STRING {
		t.Fatalf("plain user agents %v", got)
	}
}

// TestSealRejectsDamagedBatch: an open segment whose batch is whole by its
// framing but whose string offsets are garbage (a crash can leave one) is
// ErrCorrupt when sealed, not a panic.
func TestSealRejectsDamagedBatch(t *testing.T) {
	var c columns
	c.reset()
	for i := range 10 {
		c.append("proxy-01", testRecord(i))
	}
	c.userAgent.offsets[5] = 1 << 30
	schema := Schema("proxy-01")
	rec := c.record(schema)
	dir := t.TempDir()
	open := filepath.Join(dir, "x.arrows.open")
	f, err := os.Create(open)
	if err != nil {
		t.Fatal(err)
	}
	w := ipc.NewWriter(f, ipc.WithSchema(schema))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	w.Close()
	f.Close()
	if _, err := sealFile(dir, open, "x.arrows", memory.NewGoAllocator()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("sealing a damaged batch: got %v, want ErrCorrupt", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.arrows")); !os.IsNotExist(err) {
		t.Fatalf("a sealed segment was left: %v", err)
	}
}
