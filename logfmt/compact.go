package logfmt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

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
	version, _, err := checkSchema(rd.Schema())
	if err != nil {
		return Entry{}, err
	}
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
	w := ipc.NewWriter(hw, ipc.WithSchema(rd.Schema()), ipc.WithZstd(), ipc.WithAllocator(alloc))
	e := Entry{Name: name, Version: version}
	var batch []arrow.RecordBatch
	var rows int64
	flush := func() error {
		defer func() {
			for _, r := range batch {
				r.Release()
			}
			batch, rows = batch[:0], 0
		}()
		switch len(batch) {
		case 0:
			return nil
		case 1:
			return w.Write(batch[0])
		}
		schema := batch[0].Schema()
		cols := make([]arrow.Array, schema.NumFields())
		for i := range cols {
			parts := make([]arrow.Array, len(batch))
			for j, r := range batch {
				parts[j] = r.Column(i)
			}
			c, err := array.Concatenate(parts, alloc)
			if err != nil {
				return err
			}
			cols[i] = c
		}
		rec := array.NewRecordBatch(schema, cols, rows)
		for _, c := range cols {
			c.Release()
		}
		defer rec.Release()
		return w.Write(rec)
	}
	for rd.Next() {
		r := rd.RecordBatch()
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
