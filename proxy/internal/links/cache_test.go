package links

import (
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// TestCacheHeapWithinBound fills the cache far past its bound with targets
// of several lengths and measures, after a collection, the heap it really
// holds: the weigher must not underestimate an entry, or a proxy configured
// for 256 MiB would use more.
func TestCacheHeapWithinBound(t *testing.T) {
	const bound = 32 << 20
	long := strings.Repeat("x", 4000)
	for _, tc := range []struct {
		name     string
		min, max int
	}{
		{"typical", 40, 60},
		{"mixed", 20, 300},
		{"long", 500, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := liveHeap()
			r, err := New(Config{CacheBytes: bound}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			// Twice what the bound holds: the cache evicts half.
			fills := 2 * bound / int64(entryWeight(Entry{Target: long[:(tc.min+tc.max)/2]}))
			for id := int64(1); id <= fills; id++ {
				n := tc.min + rng.IntN(tc.max-tc.min)
				r.fill(id, Entry{ID: id, Type: 302, Target: strings.Clone(long[:n])}, 0)
			}
			held := liveHeap() - before
			st := r.Stats()
			t.Logf("%d entries, weighed %d bytes, heap %d bytes (%.2f of the bound)", st.CacheEntries, st.CacheBytes, held, float64(held)/bound)
			if st.CacheBytes < bound*9/10 || int64(st.CacheEntries) >= fills {
				t.Fatalf("cache not filled past its bound: %d entries weighing %d of %d", st.CacheEntries, st.CacheBytes, bound)
			}
			if st.CacheBytes > bound {
				t.Fatalf("cache weighs %d bytes, bound %d", st.CacheBytes, bound)
			}
			if held > bound {
				t.Fatalf("cache holds %d bytes of heap, bound %d: entryWeight underestimates an entry", held, bound)
			}
			runtime.KeepAlive(r)
		})
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
