package seed

import (
	"context"
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
