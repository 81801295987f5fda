package logfmt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestSealDirtyBuffers: sealing with an allocator that hands out recycled
// buffers without zeroing them (the writer's and the repair's) writes the
// same bytes as sealing with zeroed buffers. Every buffer comes filled
// with 0xAA, so a byte sealing wrote without filling it would show.
func TestSealDirtyBuffers(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.arrows.open")
	const n = 3000
	writeOpenSegment(t, open, n, 70)

	seal := func(name string, a memory.Allocator) []byte {
		t.Helper()
		e, err := sealFile(dir, open, name, a)
		if err != nil || e.Rows != n {
			t.Fatalf("sealed %d rows, err %v", e.Rows, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := seal("zeroed.arrows", &poolAllocator{})
	got := seal("dirty.arrows", dirtyAllocator{})
	if !bytes.Equal(got, want) {
		t.Fatalf("sealed with dirty buffers: %d bytes, differing from the %d sealed with zeroed ones", len(got), len(want))
	}
	rows, err := ReadAll(bytes.NewReader(got))
	if err != nil || len(rows) != n {
		t.Fatalf("read %d rows, err %v; want %d", len(rows), err, n)
	}
}

// dirtyAllocator hands out buffers filled with 0xAA, as a pool that does
// not zero recycled buffers may.
type dirtyAllocator struct{}

func (dirtyAllocator) Allocate(size int) []byte {
	b := make([]byte, size, size+64)
	for i := range b[:cap(b)] {
		b[:cap(b)][i] = 0xAA
	}
	return b
}

func (a dirtyAllocator) Reallocate(size int, b []byte) []byte {
	nb := a.Allocate(size)
	copy(nb, b)
	return nb
}

func (dirtyAllocator) Free([]byte) {}
