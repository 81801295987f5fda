package job

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"shortfleet/logfmt"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/proxy/admin"
)

const token = "job-test-token"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// proxyLogs is one proxy's log writer served through the real admin API.
type proxyLogs struct {
	id  string
	dir string
	w   *logfmt.Writer
	srv *httptest.Server
}

func newProxyLogs(t *testing.T, id string) *proxyLogs {
	p := &proxyLogs{id: id, dir: t.TempDir()}
	var err error
	if p.w, err = logfmt.NewWriter(logfmt.WriterConfig{Dir: p.dir, Proxy: id}, quiet); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.w.Close() })
	p.srv = p.serve()
	return p
}

func (p *proxyLogs) serve() *httptest.Server {
	return httptest.NewServer(admin.Handler(admin.Config{Proxy: p.id, LogDir: p.dir, Token: token, Segments: p.w}, quiet))
}

// write seals one segment of records and adds what it holds to want.
func (p *proxyLogs) write(t *testing.T, want Counts, recs ...logfmt.Record) {
	t.Helper()
	for i := range recs {
		p.w.Append(&recs[i])
		if recs[i].LinkID > 0 && logfmt.IsRedirect(recs[i].Status) {
			h := time.Unix(0, recs[i].Time).UTC().Truncate(time.Hour).Unix()
			want[Key{recs[i].LinkID, h}]++
		}
	}
	p.w.Rotate()
}

func setupDB(t *testing.T) *pgxpool.Pool {
	_, db := pgcluster.StartTestDatabase(t)
	return db
}

func stored(t *testing.T, db *pgxpool.Pool) Counts {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT link_id, hour, clicks FROM clicks_hourly`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	c := Counts{}
	for rows.Next() {
		var k Key
		var h time.Time
		var v int64
		if err := rows.Scan(&k.LinkID, &h, &v); err != nil {
			t.Fatal(err)
		}
		k.Hour = h.Unix()
		c[k] = v
	}
	return c
}

func equalCounts(t *testing.T, got, want Counts) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d aggregates stored, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("link %d hour %d: %d clicks stored, want %d", k.LinkID, k.Hour, got[k], v)
		}
	}
}

func clicks(n int, link int64, at time.Time) []logfmt.Record {
	var r []logfmt.Record
	for i := range n {
		r = append(r, rec(at.Add(time.Duration(i)*time.Second), link, 302))
	}
	return append(r, rec(at, 0, 404))
}

func TestRunExactlyOnce(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a, b := newProxyLogs(t, "proxy-a"), newProxyLogs(t, "proxy-b")
	want := Counts{}
	a.write(t, want, clicks(30, 1, t0)...)
	a.write(t, want, clicks(5, 2, t0.Add(2*time.Hour))...)
	b.write(t, want, clicks(7, 1, t0.Add(30*time.Minute))...)
	j := New(Config{Proxies: []string{a.srv.URL, b.srv.URL}, Token: token, Partitions: 3}, quiet, db)

	res, err := j.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 3 || res.Clicks != 42 || res.Records != 45 {
		t.Fatalf("first run %+v", res)
	}
	equalCounts(t, stored(t, db), want)

	res, err = j.Run(ctx)
	if err != nil || res.Segments != 0 {
		t.Fatalf("second run %+v, %v", res, err)
	}
	equalCounts(t, stored(t, db), want)

	// A new segment later adds to the same hours.
	b.write(t, want, clicks(3, 1, t0)...)
	if res, err := j.Run(ctx); err != nil || res.Segments != 1 || res.Clicks != 3 {
		t.Fatalf("third run %+v, %v", res, err)
	}
	equalCounts(t, stored(t, db), want)
	var ledger int
	db.QueryRow(ctx, `SELECT count(*) FROM ingested_segments`).Scan(&ledger)
	if ledger != 4 {
		t.Fatalf("%d ledger rows, want 4", ledger)
	}
	// Every ingested segment was acknowledged: nothing is pending.
	if n := len(a.w.Pending()) + len(b.w.Pending()); n != 0 {
		t.Fatalf("%d segments still pending after ingest", n)
	}
}

// TestLostAcknowledgement: a segment in the ledger that a proxy still lists
// (its acknowledgement was lost) is skipped and acknowledged again.
func TestLostAcknowledgement(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a := newProxyLogs(t, "proxy-a")
	want := Counts{}
	a.write(t, want, clicks(3, 1, t0)...)
	e := a.w.Pending()[0]
	sum, _ := hex.DecodeString(e.SHA256)
	db.Exec(ctx, `INSERT INTO ingested_segments (proxy, name, sha256, rows, bytes) VALUES ('proxy-a', $1, $2, $3, $4)`, e.Name, sum, e.Rows, e.Bytes)
	j := New(Config{Proxies: []string{a.srv.URL}, Token: token}, quiet, db)
	if res, err := j.Run(ctx); err != nil || res.Segments != 0 {
		t.Fatalf("run: %+v, %v", res, err)
	}
	if len(a.w.Pending()) != 0 {
		t.Fatal("known segment not acknowledged again")
	}
	if got := stored(t, db); len(got) != 0 {
		t.Fatalf("a ledger segment was counted: %v", got)
	}
}

func TestRunLocked(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	conn, err := db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, LockKey)
	j := New(Config{Token: token}, quiet, db)
	if _, err := j.Run(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("run while locked: %v, want ErrLocked", err)
	}
	conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, LockKey)
	if _, err := j.Run(ctx); err != nil {
		t.Fatalf("run after unlock: %v", err)
	}
}

// TestProxyDownCaughtUp: a proxy that cannot be listed is skipped; its
// segments are ingested by the first run that reaches it.
func TestProxyDownCaughtUp(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a, b := newProxyLogs(t, "proxy-a"), newProxyLogs(t, "proxy-b")
	want := Counts{}
	a.write(t, want, clicks(4, 1, t0)...)
	b.write(t, want, clicks(6, 2, t0)...)
	bURL := b.srv.URL
	b.srv.Close()
	j := New(Config{Proxies: []string{a.srv.URL, bURL}, Token: token, HTTPTimeout: 2 * time.Second}, quiet, db)
	res, err := j.Run(ctx)
	if err != nil || res.Segments != 1 || len(res.ProxiesDown) != 1 {
		t.Fatalf("run with proxy-b down: %+v, %v", res, err)
	}
	b2 := b.serve()
	defer b2.Close()
	j = New(Config{Proxies: []string{a.srv.URL, b2.URL}, Token: token}, quiet, db)
	if res, err := j.Run(ctx); err != nil || res.Segments != 1 || res.Clicks != 6 {
		t.Fatalf("catch-up run: %+v, %v", res, err)
	}
	equalCounts(t, stored(t, db), want)
}

// TestCorruptSegmentSkipped: a segment whose bytes do not match its
// manifest is not ingested and does not stop the run.
func TestCorruptSegmentSkipped(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a := newProxyLogs(t, "proxy-a")
	defer a.srv.Close()
	want := Counts{}
	a.write(t, Counts{}, clicks(9, 1, t0)...) // corrupted below: not wanted
	a.write(t, want, clicks(2, 2, t0)...)
	entries, _ := logfmt.ReadManifest(a.dir)
	path := filepath.Join(a.dir, entries[0].Name)
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0xff
	os.WriteFile(path, data, 0o644)
	j := New(Config{Proxies: []string{a.srv.URL}, Token: token}, quiet, db)
	res, err := j.Run(ctx)
	if err != nil || res.Segments != 1 || len(res.Failed) != 1 {
		t.Fatalf("run: %+v, %v", res, err)
	}
	equalCounts(t, stored(t, db), want)
}
