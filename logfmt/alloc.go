package logfmt

import (
	"math/bits"
	"sync"
	"unsafe"
)

// poolAllocator is an Arrow memory allocator that recycles buffers. The
// writer's builders fill a batch's buffers, the batch is written and
// released, and its buffers come back here for the next batch, so the
// access log makes no garbage and touches no fresh pages while it runs.
// Buffers come in power-of-two size classes, 64-byte aligned and zeroed,
// as arrow-go's Go allocator hands them out.
type poolAllocator struct {
	classes [48]sync.Pool // class c holds buffers of capacity 1<<c
	// noZero skips zeroing recycled buffers. Only for readers and
	// sealing: every buffer a reader allocates is filled whole, by a read
	// or a decompression; sealing's are filled by those, by concatenating
	// (columns without nulls, so no validity bitmaps) and by compressing,
	// and only the filled length is written (TestSealDirtyBuffers). The
	// repair has always sealed with the readers' allocator.
	noZero bool
}

const (
	minClass = 6 // 64 bytes
	align    = 64
)

func classOf(size int) int {
	if size <= 1<<minClass {
		return minClass
	}
	return bits.Len(uint(size - 1))
}

func (a *poolAllocator) Allocate(size int) []byte {
	c := classOf(size)
	if c >= len(a.classes) {
		panic("logfmt: allocation too large")
	}
	if p, ok := a.classes[c].Get().(*[]byte); ok {
		b := (*p)[:size]
		if !a.noZero {
			clear(b)
		}
		return b
	}
	raw := make([]byte, 1<<c+align)
	shift := (align - int(uintptr(unsafe.Pointer(&raw[0])))%align) % align
	return raw[shift : shift+size : shift+1<<c]
}

func (a *poolAllocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		old := len(b)
		b = b[:size]
		if size > old {
			clear(b[old:])
		}
		return b
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

func (a *poolAllocator) Free(b []byte) {
	c := cap(b)
	if c < 1<<minClass || c&(c-1) != 0 {
		return // not one of ours
	}
	full := b[:c]
	a.classes[bits.Len(uint(c))-1].Put(&full)
}
