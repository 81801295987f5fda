package logfmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// sealedSegment writes n test records through a Writer and returns the
// sealed segment's bytes.
func sealedSegment(t testing.TB, n, flushRows int) []byte {
	t.Helper()
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir, Proxy: "proxy-01", FlushRows: flushRows}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		w.Append(testRecord(i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := ReadManifest(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("%d segments, err %v; want 1", len(entries), err)
	}
	data, err := os.ReadFile(filepath.Join(dir, entries[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rewrite reads a stream with arrow-go's plain reader and writes it again
// with opts: another compression, or none.
func rewrite(t *testing.T, data []byte, opts ...ipc.Option) []byte {
	t.Helper()
	r, err := ipc.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, append([]ipc.Option{ipc.WithSchema(r.Schema())}, opts...)...)
	for r.Next() {
		if err := w.Write(r.RecordBatch()); err != nil {
			t.Fatal(err)
		}
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stockBatches decodes a stream with arrow-go's plain reader, which
// decompresses buffers itself.
func stockBatches(t testing.TB, data []byte) []arrow.RecordBatch {
	t.Helper()
	r, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(memory.NewGoAllocator()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var out []arrow.RecordBatch
	for r.Next() {
		rec := r.RecordBatch()
		rec.Retain()
		out = append(out, rec)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	return out
}

// TestInflateMatchesArrow decodes segments through the inflater, from a
// stream and in place, and checks every batch equals what arrow-go's plain
// reader makes of the same bytes: sealed (zstd) segments as the writer
// makes them, and the same batches written uncompressed, with LZ4, and
// with zstd buffers partly or wholly stored raw, which pass through or are
// copied.
func TestInflateMatchesArrow(t *testing.T) {
	sealed := sealedSegment(t, 3000, 100)
	if h := firstBatch(t, sealed); !h.zstdBatch {
		t.Fatal("a sealed segment's batch is not marked for inflate")
	}
	for _, tc := range []struct {
		name    string
		data    []byte
		inflate bool // whether the inflater decompresses its batches itself
	}{
		{"sealed", sealed, true},
		{"uncompressed", rewrite(t, sealed), false},
		{"lz4", rewrite(t, sealed, ipc.WithLZ4()), false},
		{"zstd some raw", rewrite(t, sealed, ipc.WithZstd(), ipc.WithMinSpaceSavings(0.9)), true},
		{"zstd all raw", rewrite(t, sealed, ipc.WithZstd(), ipc.WithMinSpaceSavings(1)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h := firstBatch(t, tc.data); h.zstdBatch != tc.inflate {
				t.Fatalf("batch marked for inflate: %v, want %v", h.zstdBatch, tc.inflate)
			}
			want := stockBatches(t, tc.data)
			defer func() {
				for _, r := range want {
					r.Release()
				}
			}()
			for _, inPlace := range []bool{false, true} {
				var rd *Reader
				var err error
				if inPlace {
					rd, err = NewBytesReader(tc.data)
				} else {
					rd, err = NewReader(bytes.NewReader(tc.data))
				}
				if err != nil {
					t.Fatal(err)
				}
				i := 0
				for ; rd.Next(); i++ {
					if i >= len(want) {
						t.Fatalf("in place %v: more batches than arrow-go reads (%d)", inPlace, len(want))
					}
					if got := rd.r.RecordBatch(); !array.RecordEqual(got, want[i]) {
						t.Fatalf("in place %v: batch %d differs from arrow-go's", inPlace, i)
					}
				}
				if rd.Err() != nil || i != len(want) {
					t.Fatalf("in place %v: %d batches, err %v; arrow-go reads %d", inPlace, i, rd.Err(), len(want))
				}
				rd.Release()
			}
			rows, err := ReadAll(bytes.NewReader(tc.data))
			if err != nil || len(rows) != 3000 {
				t.Fatalf("%d rows, err %v", len(rows), err)
			}
			for i := range rows {
				if w := wantRow("proxy-01", testRecord(i)); !reflect.DeepEqual(rows[i], w) {
					t.Fatalf("row %d:\n got %+v\nwant %+v", i, rows[i], w)
				}
			}
		})
	}
}

// firstBatch parses the metadata of a stream's first record batch.
func firstBatch(t *testing.T, data []byte) message {
	t.Helper()
	off, _ := batchAt(t, data)
	n := binary.LittleEndian.Uint32(data[off+4:])
	h, err := parseMessage(data[off+8 : off+8+int(n)])
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// batchAt returns where a stream's first record batch message starts and
// where its body does.
func batchAt(t *testing.T, data []byte) (msg, body int) {
	t.Helper()
	off := 0
	for off+8 <= len(data) {
		n := int(binary.LittleEndian.Uint32(data[off+4:]))
		h, err := parseMessage(data[off+8 : off+8+n])
		if err != nil {
			t.Fatal(err)
		}
		if h.batch.Bytes != nil {
			return off, off + 8 + n
		}
		off += 8 + n + int(h.bodyLen)
	}
	t.Fatal("no record batch")
	return 0, 0
}

// TestInflateRejects damages one buffer of a sealed segment's first batch
// in ways the segment's framing still allows, and checks that both ways of
// reading give ErrCorrupt, not a panic or a wrong value.
func TestInflateRejects(t *testing.T) {
	sealed := sealedSegment(t, 500, 500)
	_, bodyAt := batchAt(t, sealed)
	h := firstBatch(t, sealed)
	bufs := vectorOf(&h.batch, vtBatchBuffers, structSize)
	// The largest buffer: a compressed one.
	big := 0
	for i := range bufs.n {
		if bufs.long(i, 1) > bufs.long(big, 1) {
			big = i
		}
	}
	off, n := bufs.long(big, 0), bufs.long(big, 1)
	prefix := bodyAt + int(off)
	size := int64(binary.LittleEndian.Uint64(sealed[prefix:]))
	if size <= 0 {
		t.Fatalf("largest buffer (%d bytes) is not compressed: prefix %d", n, size)
	}
	damage := func(fn func(b []byte)) []byte {
		b := bytes.Clone(sealed)
		fn(b)
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"claims more", damage(func(b []byte) { binary.LittleEndian.PutUint64(b[prefix:], uint64(size+1)) })},
		{"claims less", damage(func(b []byte) { binary.LittleEndian.PutUint64(b[prefix:], uint64(size-1)) })},
		{"claims too much", damage(func(b []byte) { binary.LittleEndian.PutUint64(b[prefix:], maxAlloc+1) })},
		{"claims negative", damage(func(b []byte) { binary.LittleEndian.PutUint64(b[prefix:], 1<<63) })},
		{"garbage frame", damage(func(b []byte) { copy(b[prefix+8:], "not a zstd frame at all") })},
		{"damaged frame", damage(func(b []byte) {
			for i := prefix + 8 + int(n)/2; i < prefix+int(n)-8; i++ {
				b[i] ^= 0x5a
			}
		})},
		{"truncated body", sealed[:bodyAt+int(off)+int(n)/2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadAll(bytes.NewReader(tc.data)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("stream: got %v, want ErrCorrupt", err)
			}
			if _, err := readAllBytes(tc.data); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("in place: got %v, want ErrCorrupt", err)
			}
		})
	}
}

// readAllBytes is ReadAll through NewBytesReader.
func readAllBytes(data []byte) ([]Row, error) {
	rd, err := NewBytesReader(data)
	if err != nil {
		return nil, err
	}
	return rd.readAll()
}

// BenchmarkDecode decodes one sealed segment of 65,536 records: "stock" is
// arrow-go's plain reader, which decompresses each batch with a new zstd
// decoder on goroutines of its own; "reader" and "in_place" are ours, from
// a stream and in place.
func BenchmarkDecode(b *testing.B) {
	data := sealedSegment(b, 1<<16, 1<<12)
	const rows = 1 << 16
	run := func(b *testing.B, next func() (int, error)) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			n, err := next()
			if err != nil || n != rows {
				b.Fatalf("%d rows, err %v", n, err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	}
	b.Run("stock", func(b *testing.B) {
		run(b, func() (int, error) {
			r, err := ipc.NewReader(bytes.NewReader(data))
			if err != nil {
				return 0, err
			}
			defer r.Release()
			n := 0
			for r.Next() {
				n += int(r.RecordBatch().NumRows())
			}
			return n, r.Err()
		})
	})
	for _, inPlace := range []bool{false, true} {
		name := "reader"
		if inPlace {
			name = "in_place"
		}
		b.Run(name, func(b *testing.B) {
			run(b, func() (int, error) {
				var rd *Reader
				var err error
				if inPlace {
					rd, err = NewBytesReader(data)
				} else {
					rd, err = NewReader(bytes.NewReader(data))
				}
				if err != nil {
					return 0, err
				}
				defer rd.Release()
				n := 0
				for rd.Next() {
					n += rd.Batch().Len()
				}
				return n, rd.Err()
			})
		})
	}
}

// readAllStock is ReadAll with arrow-go's plain IPC reader underneath, so
// arrow-go decompresses every buffer itself.
func readAllStock(data []byte) (rows []Row, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	ir, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(readAlloc))
	if err != nil {
		return nil, err
	}
	return (&Reader{r: ir}).readAll()
}

// projected is what a read of only cols makes of row: the other columns'
// zero values.
func projected(row Row, cols []int) Row {
	var p Row
	pv, rv := reflect.ValueOf(&p).Elem(), reflect.ValueOf(row)
	for _, c := range cols {
		pv.Field(c).Set(rv.Field(c))
	}
	return p
}

// TestColumnsReader reads sealed segments keeping some columns, among
// them the map's and one that keeps only the list of headers, and checks
// the kept columns against a whole read and the others are zero values.
func TestColumnsReader(t *testing.T) {
	sealed := sealedSegment(t, 3000, 100)
	if reflect.TypeOf(Row{}).NumField() != numCols {
		t.Fatalf("Row has %d fields, segments %d columns: projected() needs them in column order", reflect.TypeOf(Row{}).NumField(), numCols)
	}
	whole, err := ReadAll(bytes.NewReader(sealed))
	if err != nil {
		t.Fatal(err)
	}
	for _, cols := range [][]int{
		{ColTime, ColClientAddr, ColStatus, ColLinkID, ColUserAgent, ColReferrer, ColAcceptLanguage},
		{ColHeaders},
		{ColProxy, ColClientPort, ColLatency},
		{},
	} {
		rd, err := NewColumnsReader(sealed, cols...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rd.readAll()
		if err != nil || len(got) != len(whole) {
			t.Fatalf("columns %v: %d rows, err %v; want %d", cols, len(got), err, len(whole))
		}
		for i := range got {
			if want := projected(whole[i], cols); !reflect.DeepEqual(got[i], want) {
				t.Fatalf("columns %v, row %d:\n got %+v\nwant %+v", cols, i, got[i], want)
			}
		}
	}
}

// TestColumnsReaderSkipsDamage shows the price of a projected read: damage
// in a column not read goes unseen (the job checks every segment's
// SHA-256 first), while the same damage in a column read is caught.
func TestColumnsReaderSkipsDamage(t *testing.T) {
	sealed := sealedSegment(t, 500, 500)
	_, bodyAt := batchAt(t, sealed)
	h := firstBatch(t, sealed)
	bufs := vectorOf(&h.batch, vtBatchBuffers, structSize)
	roles, ok := bufferRoles(schemaOf(SealedVersion, "proxy-01"), []int{ColUserAgent})
	if !ok || len(roles) != bufs.n {
		t.Fatalf("%d roles (ok %v) for %d buffers", len(roles), ok, bufs.n)
	}
	// The last buffer is the header values' bytes, a column not read; the
	// last buffer kept is the user agents' bytes.
	last := bufs.n - 1
	ua := -1
	for i, r := range roles {
		if r == keepBuffer && bufs.long(i, 1) > 0 {
			ua = i
		}
	}
	damage := func(i int) []byte {
		b := bytes.Clone(sealed)
		off, n := bufs.long(i, 0), bufs.long(i, 1)
		copy(b[bodyAt+int(off)+8:bodyAt+int(off+n)], bytes.Repeat([]byte{0xa5}, int(n)))
		return b
	}
	headers := damage(last)
	if _, err := ReadAll(bytes.NewReader(headers)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("whole read of damaged headers: got %v, want ErrCorrupt", err)
	}
	rd, err := NewColumnsReader(headers, ColUserAgent)
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := rd.readAll(); err != nil || len(rows) != 500 || rows[0].UserAgent == "" {
		t.Fatalf("user agents of a segment with damaged headers: %d rows, err %v", len(rows), err)
	}
	rd, err = NewColumnsReader(damage(ua), ColUserAgent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.readAll(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("user agents damaged: got %v, want ErrCorrupt", err)
	}
}
