package seed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"shortfleet/provisioning/pgcluster"
	"shortfleet/sql/codes"
)

// TestLinksReachTheReplica seeds links in several chunks on two
// connections, waits for the replica, and reads every one back there.
func TestLinksReachTheReplica(t *testing.T) {
	ctx := context.Background()
	primary, _ := pgcluster.StartTestDatabase(t)
	replica := pgcluster.StartTestReplica(t, primary, "bench_seed")
	const n = 2500
	first, last, err := LinksWith(ctx, primary.DSN("shortfleet"), n, Options{Workers: 2, Chunk: 700})
	if err != nil {
		t.Fatal(err)
	}
	if last-first+1 != n {
		t.Fatalf("got ids %d..%d, want %d of them", first, last, n)
	}
	// A second load continues after the first, as API creations would.
	first2, last2, err := Links(ctx, primary.DSN("shortfleet"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if first2 != last+1 || last2 != last+10 {
		t.Fatalf("second load got %d..%d, want %d..%d", first2, last2, last+1, last+10)
	}
	if _, err := WaitReplayed(ctx, primary.DSN("shortfleet"), []string{replica.DSN("shortfleet")}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, replica.DSN("shortfleet"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var count, lo, hi int64
	var target string
	if err := conn.QueryRow(ctx, `SELECT count(*), min(id), max(id) FROM links`).Scan(&count, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if count != n+10 || lo != first || hi != last2 {
		t.Fatalf("replica has %d links, ids %d..%d; want %d, %d..%d", count, lo, hi, n+10, first, last2)
	}
	if err := conn.QueryRow(ctx, `SELECT target FROM links WHERE id = $1`, first+777).Scan(&target); err != nil {
		t.Fatal(err)
	}
	if want := "/landing/" + strconv.FormatInt(first+777, 10) + "?"; !strings.Contains(target, want) {
		t.Fatalf("link %d targets %q, want it to contain %q", first+777, target, want)
	}

	codec, err := codes.New([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "codes.txt")
	if err := WriteCodes(path, codec, first, last); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	lines := strings.Fields(string(data))
	if len(lines) != n {
		t.Fatalf("got %d codes, want %d", len(lines), n)
	}
	if id, err := codec.DecodeString(lines[42]); err != nil || id != first+42 {
		t.Fatalf("code %q decodes to %d, %v; want %d", lines[42], id, err, first+42)
	}

	sample := filepath.Join(t.TempDir(), "sample.txt")
	if err := WriteSample(sample, codec, first, last, 300, rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(sample)
	lines = strings.Fields(string(data))
	if len(lines) != 300 {
		t.Fatalf("got %d sampled codes, want 300", len(lines))
	}
	seen := map[int64]bool{}
	for _, c := range lines {
		id, err := codec.DecodeString(c)
		if err != nil || id < first || id > last {
			t.Fatalf("sampled code %q decodes to %d, %v; want an id in %d..%d", c, id, err, first, last)
		}
		seen[id] = true
	}
	if len(seen) < 250 { // 300 draws from 2500 ids repeat a few
		t.Fatalf("only %d distinct ids in 300 draws", len(seen))
	}
}

// TestSettleFreezesLinks checks what Settle leaves on the replica: every
// page of links all-visible in the visibility map, the table's statistics
// counting what was loaded, and its tuples frozen (relfrozenxid moved up
// to the vacuum's horizon). Without Settle a fresh load has no page
// all-visible and no statistics (reltuples -1). Then Prewarm.
func TestSettleFreezesLinks(t *testing.T) {
	ctx := context.Background()
	primary, _ := pgcluster.StartTestDatabase(t)
	replica := pgcluster.StartTestReplica(t, primary, "bench_settle")
	dsn := primary.DSN("shortfleet")
	const n = 3000
	if _, _, err := LinksWith(ctx, dsn, n, Options{Workers: 2, Chunk: 1000}); err != nil {
		t.Fatal(err)
	}
	var xmin int64
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The loads' newest transaction.
	if err := conn.QueryRow(ctx, `SELECT max(xmin::text::bigint) FROM links`).Scan(&xmin); err != nil {
		t.Fatal(err)
	}
	if err := Settle(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitReplayed(ctx, dsn, []string{replica.DSN("shortfleet")}); err != nil {
		t.Fatal(err)
	}
	rc, err := pgx.Connect(ctx, replica.DSN("shortfleet"))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	var pages, visible int64
	var tuples float64
	var frozenPast bool
	if err := rc.QueryRow(ctx, `SELECT relpages, relallvisible, reltuples, relfrozenxid::text::bigint > $1 FROM pg_class WHERE relname = 'links'`, xmin).
		Scan(&pages, &visible, &tuples, &frozenPast); err != nil {
		t.Fatal(err)
	}
	if pages == 0 || visible != pages {
		t.Fatalf("replica: links has %d pages, %d of them all-visible; want all", pages, visible)
	}
	if tuples != n {
		t.Fatalf("replica: links' statistics count %.0f rows, want %d", tuples, n)
	}
	if !frozenPast {
		t.Fatalf("replica: links' relfrozenxid is not past the loads' transactions (%d)", xmin)
	}
	// Prewarm reads every page of the table and its primary key there.
	blocks, err := Prewarm(ctx, dsn, []string{replica.DSN("shortfleet")})
	if err != nil {
		t.Fatal(err)
	}
	var pkey int64
	if err := rc.QueryRow(ctx, `SELECT pg_relation_size('links_pkey') / 8192`).Scan(&pkey); err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 1 || blocks[0] != pages+pkey {
		t.Fatalf("prewarm read %v blocks, want %d (links %d, links_pkey %d)", blocks, pages+pkey, pages, pkey)
	}
}

// TestDistinct: every id drawn once, inside the range, the whole range
// when k is its size, and an error past it.
func TestDistinct(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, tc := range []struct {
		first, last int64
		k           int
	}{{1, 1000, 10}, {1, 1000, 999}, {500, 1499, 1000}, {10, 10, 1}, {1, 10, 0}} {
		t.Run(fmt.Sprintf("%d-%d_k%d", tc.first, tc.last, tc.k), func(t *testing.T) {
			ids, err := Distinct(tc.first, tc.last, tc.k, rng)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != tc.k {
				t.Fatalf("got %d ids, want %d", len(ids), tc.k)
			}
			seen := map[int64]bool{}
			for _, id := range ids {
				if id < tc.first || id > tc.last {
					t.Fatalf("id %d outside [%d, %d]", id, tc.first, tc.last)
				}
				if seen[id] {
					t.Fatalf("id %d drawn twice", id)
				}
				seen[id] = true
			}
		})
	}
	if _, err := Distinct(1, 10, 11, rng); err == nil {
		t.Fatalf("11 distinct ids of 10: got no error")
	}
}
