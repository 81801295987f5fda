package logfmt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// compactRows is about how many records one batch of a sealed segment
// holds. The open segment gets a batch every flush interval, a few hundred
// records at a proxy's usual rate; compressing and decompressing that many
// small buffers one by one would cost more than the data, so sealing
// rewrites them as few large compressed batches.
const compactRows = 1 << 16

// dictEncoder dictionary-encodes string columns for sealing.
type dictEncoder struct {
	seen map[string]int32
}

func newDictEncoder() *dictEncoder { return &dictEncoder{seen: map[string]int32{}} }

// encode makes one dictionary array of the parts of a string column: each
// distinct value once, in order of first appearance, and each row's index
// into them. The strings are copied: the result does not keep parts.
func (e *dictEncoder) encode(parts []arrow.Array) (arrow.Array, error) {
	clear(e.seen)
	n := 0
	for _, p := range parts {
		n += p.Len()
	}
	indices := make([]int32, 0, n)
	var values strCol
	values.reset()
	for _, p := range parts {
		col := p.(*array.String)
		for i := range col.Len() {
			v := col.Value(i)
			j, ok := e.seen[v]
			if !ok {
				j = int32(len(values.offsets) - 1)
				values.appendString(v)
				// The key points into the column, which outlives the map's use.
				e.seen[v] = j
			}
			indices = append(indices, j)
		}
	}
	if len(values.data) > math.MaxInt32 {
		return nil, fmt.Errorf("dictionary of %d bytes: more than int32 offsets hold", len(values.data))
	}
	idx, dict := fixedData(arrow.PrimitiveTypes.Int32, indices), values.arrayData()
	defer idx.Release()
	defer dict.Release()
	ia, da := array.MakeFromData(idx), array.MakeFromData(dict)
	defer ia.Release()
	defer da.Release()
	return array.NewDictionaryArray(dictString, ia, da), nil
}

// hashWriter counts and hashes what it writes.
type hashWriter struct {
	w   io.Writer
	sum hash.Hash
	n   int64
}

func (h *hashWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.sum.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// sealFile compacts the open segment at openPath (uncompressed batches,
// complete up to its end) into the sealed segment name in dir: large
// zstd-compressed batches written to a temporary file, synced, renamed into
// place, the folder synced. It returns the segment's manifest entry. The
// open file is the caller's to remove, once the manifest has the entry.
func sealFile(dir, openPath, name string, alloc memory.Allocator) (Entry, error) {
	in, err := os.Open(openPath)
	if err != nil {
		return Entry{}, err
	}
	defer in.Close()
	rd, err := ipc.NewReader(in, ipc.WithAllocator(alloc))
	if err != nil {
		return Entry{}, fmt.Errorf("%w: read open segment: %v", ErrCorrupt, err)
	}
	defer rd.Release()
	version, proxy, err := checkSchema(rd.Schema())
	if err != nil {
		return Entry{}, err
	}
	sealedVersion, ok := sealedOf[version]
	if !ok {
		return Entry{}, fmt.Errorf("%w: open segment of format version %d, want 1 or %d", ErrCorrupt, version, Version)
	}
	sealed := schemaOf(sealedVersion, proxy)
	enc := newDictEncoder()
	tmp := filepath.Join(dir, name+".tmp")
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return Entry{}, err
	}
	fail := func(err error) (Entry, error) {
		out.Close()
		os.Remove(tmp)
		return Entry{}, err
	}
	hw := &hashWriter{w: out, sum: sha256.New()}
	w := ipc.NewWriter(hw, ipc.WithSchema(sealed), ipc.WithZstd(), ipc.WithAllocator(alloc))
	e := Entry{Name: name, Version: sealedVersion}
	var batch []arrow.RecordBatch
	var rows int64
	flush := func() error {
		defer func() {
			for _, r := range batch {
				r.Release()
			}
			batch, rows = batch[:0], 0
		}()
		if len(batch) == 0 {
			return nil
		}
		cols := make([]arrow.Array, sealed.NumFields())
		defer func() {
			for _, c := range cols {
				if c != nil {
					c.Release()
				}
			}
		}()
		for i := range cols {
			parts := make([]arrow.Array, len(batch))
			for j, r := range batch {
				parts[j] = r.Column(i)
			}
			if slices.Contains(DictColumns, i) {
				c, err := enc.encode(parts)
				if err != nil {
					return err
				}
				cols[i] = c
				continue
			}
			if len(parts) == 1 {
				parts[0].Retain()
				cols[i] = parts[0]
				continue
			}
			c, err := array.Concatenate(parts, alloc)
			if err != nil {
				return err
			}
			cols[i] = c
		}
		rec := array.NewRecordBatch(sealed, cols, rows)
		defer rec.Release()
		return w.Write(rec)
	}
	for rd.Next() {
		r := rd.RecordBatch()
		// A batch recovered after a crash is whole by its framing only:
		// check it before sealing reads every string of it.
		if err := validate(r); err != nil {
			return fail(fmt.Errorf("%w: open segment batch: %v", ErrCorrupt, err))
		}
		for _, t := range r.Column(ColTime).(*array.Timestamp).Values() {
			if e.Rows == 0 || int64(t) < e.MinTime {
				e.MinTime = int64(t)
			}
			if e.Rows == 0 || int64(t) > e.MaxTime {
				e.MaxTime = int64(t)
			}
			e.Rows++
		}
		r.Retain()
		batch = append(batch, r)
		rows += r.NumRows()
		if rows >= compactRows {
			if err := flush(); err != nil {
				return fail(fmt.Errorf("write sealed segment: %w", err))
			}
		}
	}
	if err := rd.Err(); err != nil {
		return fail(fmt.Errorf("%w: read open segment: %v", ErrCorrupt, err))
	}
	if err := flush(); err != nil {
		return fail(fmt.Errorf("write sealed segment: %w", err))
	}
	if err := w.Close(); err != nil {
		return fail(fmt.Errorf("write sealed segment: %w", err))
	}
	if err := out.Sync(); err != nil {
		return fail(fmt.Errorf("sync sealed segment: %w", err))
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return Entry{}, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return Entry{}, err
	}
	if err := syncDir(dir); err != nil {
		return Entry{}, err
	}
	e.Bytes = hw.n
	e.SHA256 = hex.EncodeToString(hw.sum.Sum(nil))
	return e, nil
}
