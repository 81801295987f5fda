package redirect

import (
	"context"
	"testing"
)

// TestCacheStaysWithinBytes resolves many more links than a small cache
// holds, one by one: each redirects to its own target, the cache's weight
// never passes its bound, and a link the cache let go is looked up on the
// replica again. (links.TestCacheHeapWithinBound checks the weights against
// the heap.)
func TestCacheStaysWithinBytes(t *testing.T) {
	const bound, n = 64 << 10, 2000
	e := setup(t, setupOpts{cacheBytes: bound})
	ctx := context.Background()
	rows, err := e.pdb.Query(ctx, `INSERT INTO links (user_id, target)
		SELECT $1, 'https://example.com/many/' || g || '?utm_campaign=' || repeat('q', 60) FROM generate_series(1, $2) g
		RETURNING id, target`, e.user, n)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[int64]string{}
	var ids []int64
	for rows.Next() {
		var id int64
		var target string
		if err := rows.Scan(&id, &target); err != nil {
			t.Fatal(err)
		}
		targets[id] = target
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil || len(ids) != n {
		t.Fatalf("created %d links: %v", len(ids), err)
	}
	e.waitReplay()
	waitFor(t, "watermark", func() bool { return e.resolver.Watermark() >= ids[n-1] })

	for _, id := range ids {
		resp := e.get("/" + e.code(id))
		if got := string(resp.Header.Peek("Location")); resp.StatusCode() != 302 || got != targets[id] {
			t.Fatalf("link %d: %d %q, want 302 %q", id, resp.StatusCode(), got, targets[id])
		}
		if st := e.resolver.Stats(); st.CacheBytes > bound {
			t.Fatalf("after link %d the cache weighs %d bytes, bound %d", id, st.CacheBytes, bound)
		}
	}
	st := e.resolver.Stats()
	t.Logf("%d links resolved: %d cached, weighing %d of %d bytes", n, st.CacheEntries, st.CacheBytes, bound)
	if st.CacheBytes < bound/2 || st.CacheEntries == 0 || st.CacheEntries >= n {
		t.Fatalf("cache holds %d entries weighing %d bytes: want it full and evicting", st.CacheEntries, st.CacheBytes)
	}
	var gone int64
	for _, id := range ids {
		if _, ok := e.resolver.Cached(id); !ok {
			gone = id
			break
		}
	}
	if gone == 0 {
		t.Fatal("every link is still cached")
	}
	before := e.resolver.Stats().ReplicaLookups
	if resp := e.get("/" + e.code(gone)); resp.StatusCode() != 302 || string(resp.Header.Peek("Location")) != targets[gone] {
		t.Fatalf("evicted link %d: %d", gone, resp.StatusCode())
	}
	if after := e.resolver.Stats().ReplicaLookups; after != before+1 {
		t.Fatalf("replica lookups %d -> %d for an evicted link, want one more", before, after)
	}
}
