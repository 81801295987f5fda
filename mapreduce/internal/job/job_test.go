package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"shortfleet/logfmt"
	"shortfleet/mapreduce/internal/aggregate"
	"shortfleet/mapreduce/internal/aggregate/aggregatetest"
	"shortfleet/mapreduce/internal/mrtest"
	"shortfleet/provisioning/pgcluster"
	sfsql "shortfleet/sql"
)

// t0 is when the test records begin, under the short name the tests use.
var t0 = aggregatetest.Start

// want is what the stats must hold: per link and hour, clicks and bots.
type want map[aggregate.HourKey]aggregate.HourCounts

func (w want) add(recs []logfmt.Record) {
	for _, r := range recs {
		if r.LinkID > 0 && logfmt.IsRedirect(r.Status) {
			k := aggregate.HourKey{Link: r.LinkID, Hour: time.Unix(0, r.Time).UTC().Truncate(time.Hour).Unix()}
			h := w[k]
			h.Clicks++
			if string(r.UserAgent) == aggregatetest.Googlebot {
				h.Bots++
			}
			w[k] = h
		}
	}
}

// proxyLogs is one proxy's log writer served through the real admin API.
type proxyLogs struct{ *mrtest.Proxy }

func newProxyLogs(t *testing.T, id string) *proxyLogs { return &proxyLogs{mrtest.NewProxy(t, id)} }

// write seals one segment of records and adds its clicks to w.
func (p *proxyLogs) write(w want, recs ...logfmt.Record) {
	p.Write(recs...)
	if w != nil {
		w.add(recs)
	}
}

func setupDB(t *testing.T) *pgxpool.Pool {
	_, db := pgcluster.StartTestDatabase(t)
	return db
}

func newJob(t *testing.T, db *pgxpool.Pool, cfg Config) *Job {
	t.Helper()
	cfg.Token = mrtest.Token
	cfg.Dims = aggregatetest.Dims(t)
	j, err := New(cfg, mrtest.Quiet, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func stored(t *testing.T, db *pgxpool.Pool) want {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT link_id, hour, clicks, bot_clicks FROM clicks_hourly`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := want{}
	for rows.Next() {
		var k aggregate.HourKey
		var h time.Time
		var v aggregate.HourCounts
		if err := rows.Scan(&k.Link, &h, &v.Clicks, &v.Bots); err != nil {
			t.Fatal(err)
		}
		k.Hour = h.Unix()
		got[k] = v
	}
	return got
}

func equal(t *testing.T, got, w want) {
	t.Helper()
	if len(got) != len(w) {
		t.Fatalf("%d hourly rows stored, want %d", len(got), len(w))
	}
	for k, v := range w {
		if got[k] != v {
			t.Fatalf("link %d hour %d: %+v stored, want %+v", k.Link, k.Hour, got[k], v)
		}
	}
}

// clicks makes n clicks on link from n different visitors, half of them
// bots when bots is set, and one 404.
func clicks(n int, link int64, at time.Time, bots bool) []logfmt.Record {
	var r []logfmt.Record
	for i := range n {
		c := aggregatetest.Click(at.Add(time.Duration(i)*time.Second), link, 302)
		c.ClientAddr = []byte(fmt.Sprintf("192.0.2.%d", i%250))
		if bots && i%2 == 1 {
			c.UserAgent = []byte(aggregatetest.Googlebot)
		}
		r = append(r, c)
	}
	return append(r, aggregatetest.Click(at, 0, 404))
}

type daily struct {
	clicks, bots, uniques int64
	dims                  sfsql.Dims
}

func dailyRow(t *testing.T, db *pgxpool.Pool, link int64, day time.Time) daily {
	t.Helper()
	var d daily
	var sk, dj []byte
	err := db.QueryRow(context.Background(), `SELECT clicks, bot_clicks, uniques, dims FROM link_daily WHERE link_id = $1 AND day = $2`,
		link, day.Truncate(24*time.Hour)).Scan(&d.clicks, &d.bots, &sk, &dj)
	if err != nil {
		t.Fatalf("daily row of link %d: %v", link, err)
	}
	u, err := sfsql.UniquesOf([][]byte{sk})
	if err != nil {
		t.Fatal(err)
	}
	d.uniques = int64(u)
	if err := json.Unmarshal(dj, &d.dims); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRunExactlyOnce(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a, b := newProxyLogs(t, "proxy-a"), newProxyLogs(t, "proxy-b")
	w := want{}
	a.write(w, clicks(30, 1, t0, true)...)
	a.write(w, clicks(5, 2, t0.Add(2*time.Hour), false)...)
	b.write(w, clicks(7, 1, t0.Add(30*time.Minute), false)...)
	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL, b.Srv.URL}, Partitions: 3})

	res, err := j.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 3 || res.Clicks != 42 || res.Records != 45 {
		t.Fatalf("first run %+v", res)
	}
	equal(t, stored(t, db), w)
	d := dailyRow(t, db, 1, t0)
	// 37 clicks on link 1 from 30 distinct addresses (7 reuse .0-.6), 15 of them Googlebot.
	if d.clicks != 37 || d.bots != 15 || d.dims[sfsql.DimCountry]["CH"] != 37 || d.dims[sfsql.DimBrowser]["Googlebot"] != 15 ||
		d.dims[sfsql.DimReferrer]["news.example"] != 37 || d.dims[sfsql.DimLanguage]["de"] != 37 || d.dims[sfsql.DimDevice]["bot"] != 15 {
		t.Fatalf("daily row of link 1: %+v", d)
	}
	// Visitors are address + user agent: 30 in the first segment; of the
	// 7 later ones, .0 .2 .4 .6 came back as the same Chrome visitors, and
	// .1 .3 .5, Googlebot before, are new with Chrome: 33. (Small counts
	// are exact in the sketch's sparse form.)
	if d.uniques != 33 {
		t.Fatalf("link 1 uniques %d, want 33", d.uniques)
	}

	if res, err := j.Run(ctx); err != nil || res.Segments != 0 {
		t.Fatalf("second run %+v, %v", res, err)
	}
	equal(t, stored(t, db), w)

	// A later segment adds to the same hours and merges into the same day.
	b.write(w, clicks(3, 1, t0, false)...)
	if res, err := j.Run(ctx); err != nil || res.Segments != 1 || res.Clicks != 3 {
		t.Fatalf("third run %+v, %v", res, err)
	}
	equal(t, stored(t, db), w)
	if d2 := dailyRow(t, db, 1, t0); d2.clicks != 40 || d2.uniques != d.uniques {
		t.Fatalf("after merging 3 clicks from known visitors: %+v (uniques were %d)", d2, d.uniques)
	}
	var ledger, runs int
	db.QueryRow(ctx, `SELECT count(*) FROM ingested_segments WHERE status = 'ingested' AND min_time IS NOT NULL`).Scan(&ledger)
	db.QueryRow(ctx, `SELECT count(*) FROM mapreduce_runs WHERE finished_at IS NOT NULL AND error IS NULL`).Scan(&runs)
	if ledger != 4 || runs != 3 {
		t.Fatalf("%d ledger rows, %d finished runs; want 4 and 3", ledger, runs)
	}
	if n := len(a.W.Pending()) + len(b.W.Pending()); n != 0 {
		t.Fatalf("%d segments still pending after ingest", n)
	}
}

// TestHourStoredWithoutDay: hours of link-days link_daily lacks are
// copied straight into clicks_hourly; one already there without its day
// (rows from before link_daily) sends them through the upsert, and the
// clicks add up.
func TestHourStoredWithoutDay(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	if _, err := db.Exec(ctx, `INSERT INTO clicks_hourly (link_id, hour, clicks, bot_clicks) VALUES (1, $1, 5, 2)`, t0); err != nil {
		t.Fatal(err)
	}
	w := want{aggregate.HourKey{Link: 1, Hour: t0.Unix()}: {Clicks: 5, Bots: 2}}
	a := newProxyLogs(t, "proxy-a")
	a.write(w, clicks(4, 1, t0, true)...)
	a.write(w, clicks(3, 2, t0, false)...)
	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL}})
	if _, err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	equal(t, stored(t, db), w)
	if d := dailyRow(t, db, 2, t0); d.clicks != 3 || d.uniques != 3 {
		t.Fatalf("daily row of link 2: %+v", d)
	}
}

// holdRunLock takes the job's run lock on a connection of its own, as
// another run would, until the returned unlock or the test's end.
func holdRunLock(t *testing.T, ctx context.Context, db *pgxpool.Pool) (unlock func()) {
	t.Helper()
	conn, err := db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, LockKey); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, LockKey); err != nil {
				t.Error(err)
			}
			conn.Release()
		})
	}
	t.Cleanup(unlock)
	return unlock
}

func TestRunLocked(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	unlock := holdRunLock(t, ctx, db)
	j := newJob(t, db, Config{})
	if _, err := j.Run(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("run while locked: %v, want ErrLocked", err)
	}
	unlock()
	if _, err := j.Run(ctx); err != nil {
		t.Fatalf("run after unlock: %v", err)
	}
}

// TestRecomputeCounted: a recompute takes the run lock as a run does and
// counts alike in the metrics: refused while another holds the lock, as
// locked; done, as ok; refused for a proxy down, as failed, its row in
// mapreduce_runs recording the error and the proxy down as a run's does.
func TestRecomputeCounted(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a, b := newProxyLogs(t, "proxy-a"), newProxyLogs(t, "proxy-b")
	a.write(nil, clicks(3, 1, t0, false)...)
	b.write(nil, clicks(2, 2, t0, false)...)
	// A closed proxy is refused at once; the bound only has to let the
	// live one answer on a loaded machine.
	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL, b.Srv.URL}, HTTPTimeout: 30 * time.Second})
	if _, err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	unlock := holdRunLock(t, ctx, db)
	if _, err := j.Recompute(ctx, t0); !errors.Is(err, ErrLocked) {
		t.Fatalf("recompute while locked: %v, want ErrLocked", err)
	}
	unlock()
	if _, err := j.Recompute(ctx, t0); err != nil {
		t.Fatalf("recompute after unlock: %v", err)
	}
	b.Srv.Close()
	res, err := j.Recompute(ctx, t0)
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("recompute with a proxy down: %v, want ErrIncomplete", err)
	}
	text := mrtest.Scrape(t, NewCollector(j, func() uint64 { return 0 }))
	for _, s := range []string{`shortfleet_mapreduce_runs_total{outcome="locked"} 1`, `shortfleet_mapreduce_runs_total{outcome="ok"} 2`,
		`shortfleet_mapreduce_runs_total{outcome="failed"} 1`} {
		if !strings.Contains(text, s+"\n") {
			t.Errorf("metrics lack %q:\n%s", s, text)
		}
	}
	var (
		kind, recorded string
		down           int
	)
	if err := db.QueryRow(ctx, `SELECT kind, error, proxies_down FROM mapreduce_runs WHERE id = $1 AND finished_at IS NOT NULL`, res.RunID).
		Scan(&kind, &recorded, &down); err != nil {
		t.Fatalf("row of the failed recompute %d: %v", res.RunID, err)
	}
	if kind != "recompute" || recorded != err.Error() || down != 1 {
		t.Fatalf("row of the failed recompute: kind %q, error %q, %d proxies down; want recompute, %q, 1", kind, recorded, down, err)
	}
}

// TestProxyDownCaughtUp: a proxy that cannot be listed is skipped; its
// segments are ingested by the first run that reaches it, into the hours
// they belong to.
func TestProxyDownCaughtUp(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a, b := newProxyLogs(t, "proxy-a"), newProxyLogs(t, "proxy-b")
	w := want{}
	a.write(w, clicks(4, 1, t0, false)...)
	b.write(w, clicks(6, 2, t0.Add(-26*time.Hour), false)...) // yesterday's, late
	bURL := b.Srv.URL
	b.Srv.Close()
	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL, bURL}, HTTPTimeout: 30 * time.Second})
	res, err := j.Run(ctx)
	if err != nil || res.Segments != 1 || len(res.ProxiesDown) != 1 {
		t.Fatalf("run with proxy-b down: %+v, %v", res, err)
	}
	b2 := b.Serve()
	defer b2.Close()
	j = newJob(t, db, Config{Proxies: []string{a.Srv.URL, b2.URL}})
	if res, err := j.Run(ctx); err != nil || res.Segments != 1 || res.Clicks != 6 {
		t.Fatalf("catch-up run: %+v, %v", res, err)
	}
	equal(t, stored(t, db), w)
}

// TestCorruptSegmentQuarantined: a segment whose bytes do not match its
// manifest, and one whose bytes match but do not decode, are quarantined
// with the reason; the run goes on, and they are not pulled again.
func TestCorruptSegmentQuarantined(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	// proxy-a: one good segment, one damaged after sealing.
	a := newProxyLogs(t, "proxy-a")
	w := want{}
	a.write(nil, clicks(9, 1, t0, false)...)
	a.write(w, clicks(2, 2, t0, false)...)
	bad := a.W.Pending()[0]
	path := filepath.Join(a.Dir, bad.Name)
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0xff
	os.WriteFile(path, data, 0o644)
	// proxy-b: a garbage segment its manifest vouches for (a proxy bug).
	b := &mrtest.Proxy{ID: "proxy-b", Dir: t.TempDir()}
	garbage := []byte("this is not an arrow stream, whatever the manifest says")
	sum := sha256.Sum256(garbage)
	name := "20261122T130000.000000000Z.arrows"
	os.WriteFile(filepath.Join(b.Dir, name), garbage, 0o644)
	line, _ := json.Marshal(logfmt.Entry{Name: name, Version: 1, Rows: 10, Bytes: int64(len(garbage)), SHA256: hex.EncodeToString(sum[:]), MinTime: 1, MaxTime: 2})
	os.WriteFile(filepath.Join(b.Dir, logfmt.ManifestName), append(line, '\n'), 0o644)
	b.Open(t)

	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL, b.Srv.URL}})
	res, err := j.Run(ctx)
	if err != nil || res.Segments != 1 || res.Quarantined != 2 {
		t.Fatalf("run: %+v, %v", res, err)
	}
	equal(t, stored(t, db), w)
	rows, _ := db.Query(ctx, `SELECT proxy, reason FROM ingested_segments WHERE status = 'quarantined' ORDER BY proxy`)
	var reasons []string
	for rows.Next() {
		var p, r string
		rows.Scan(&p, &r)
		reasons = append(reasons, p+": "+r)
	}
	if len(reasons) != 2 || !strings.Contains(reasons[0], "checksum mismatch") || !strings.Contains(reasons[1], "corrupt segment") {
		t.Fatalf("quarantine reasons %q", reasons)
	}
	var q int
	db.QueryRow(ctx, `SELECT quarantined FROM mapreduce_runs WHERE id = $1`, res.RunID).Scan(&q)
	if q != 2 {
		t.Fatalf("runs table says %d quarantined", q)
	}
	if res, err := j.Run(ctx); err != nil || res.Segments+res.Quarantined != 0 || len(a.W.Pending())+len(b.W.Pending()) != 0 {
		t.Fatalf("second run %+v, %v: quarantined segments must be left alone", res, err)
	}
}

// TestLostAcknowledgement: a segment in the ledger that a proxy still lists
// (its acknowledgement was lost) is skipped and acknowledged again.
func TestLostAcknowledgement(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a := newProxyLogs(t, "proxy-a")
	a.write(nil, clicks(3, 1, t0, false)...)
	e := a.W.Pending()[0]
	sum, _ := hex.DecodeString(e.SHA256)
	db.Exec(ctx, `INSERT INTO ingested_segments (proxy, name, sha256, rows, bytes) VALUES ('proxy-a', $1, $2, $3, $4)`, e.Name, sum, e.Rows, e.Bytes)
	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL}})
	if res, err := j.Run(ctx); err != nil || res.Segments != 0 {
		t.Fatalf("run: %+v, %v", res, err)
	}
	if len(a.W.Pending()) != 0 {
		t.Fatal("known segment not acknowledged again")
	}
	if got := stored(t, db); len(got) != 0 {
		t.Fatalf("a ledger segment was counted: %v", got)
	}
}

// TestRecompute rebuilds a day from the raw segments: damaged stats come
// back exactly, other days are untouched, and a recompute that cannot see
// every segment changes nothing.
func TestRecompute(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a, b := newProxyLogs(t, "proxy-a"), newProxyLogs(t, "proxy-b")
	w := want{}
	a.write(w, clicks(20, 1, t0, true)...)
	midnight := t0.Truncate(24 * time.Hour).Add(24 * time.Hour)
	b.write(w, clicks(10, 2, midnight.Add(-5*time.Second), false)...) // spans two days
	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL, b.Srv.URL}})
	if _, err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	before := dailyRow(t, db, 1, t0)
	db.Exec(ctx, `UPDATE clicks_hourly SET clicks = clicks + 100, bot_clicks = 0`)
	db.Exec(ctx, `DELETE FROM link_daily WHERE day = $1`, t0.Truncate(24*time.Hour))
	res, err := j.Recompute(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	got := stored(t, db)
	for k, v := range w {
		day := time.Unix(k.Hour, 0).UTC().Truncate(24 * time.Hour)
		if day.Equal(t0.Truncate(24 * time.Hour)) {
			if got[k] != v {
				t.Fatalf("recomputed %d/%d: %+v, want %+v", k.Link, k.Hour, got[k], v)
			}
		} else if got[k].Clicks != v.Clicks+100 {
			t.Fatalf("the next day was touched: %+v", got[k])
		}
	}
	if after := dailyRow(t, db, 1, t0); after.clicks != before.clicks || after.uniques != before.uniques || after.bots != before.bots {
		t.Fatalf("daily row after recompute %+v, before %+v", after, before)
	}
	if res.Segments != 2 {
		t.Fatalf("recompute read %d segments, want 2", res.Segments)
	}
	// A proxy down: refused, nothing changed.
	b.Srv.Close()
	db.Exec(ctx, `UPDATE clicks_hourly SET clicks = clicks + 1`)
	snapshot := stored(t, db)
	j2 := newJob(t, db, Config{Proxies: []string{a.Srv.URL, b.Srv.URL}, HTTPTimeout: time.Second})
	if _, err := j2.Recompute(ctx, t0); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("recompute with a proxy down: %v, want ErrIncomplete", err)
	}
	equal(t, stored(t, db), snapshot)
	// A segment gone (retention): refused too.
	j3 := newJob(t, db, Config{Proxies: []string{a.Srv.URL}})
	if _, err := j3.Recompute(ctx, t0); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("recompute with proxy-b's segment missing: %v, want ErrIncomplete", err)
	}
}

// TestMetrics: a run's counters, and its duration and each of its
// stages' timed once; a run refused for the lock is not timed.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	a := newProxyLogs(t, "proxy-a")
	a.write(nil, clicks(5, 1, t0, false)...)
	j := newJob(t, db, Config{Proxies: []string{a.Srv.URL}})
	if _, err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	holdRunLock(t, ctx, db)
	if _, err := j.Run(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("run while locked: %v, want ErrLocked", err)
	}
	text := mrtest.Scrape(t, NewCollector(j, func() uint64 { return 2 }))
	want := []string{`shortfleet_mapreduce_runs_total{outcome="ok"} 1`, `shortfleet_mapreduce_clicks_total 5`,
		`shortfleet_mapreduce_segments_ingested_total 1`, `shortfleet_mapreduce_runs_skipped_overrun_total 2`,
		`shortfleet_mapreduce_segments_quarantined_total 0`, `shortfleet_mapreduce_runs_total{outcome="locked"} 1`,
		`shortfleet_mapreduce_run_duration_seconds_count 1`, `shortfleet_mapreduce_last_success_timestamp_seconds `}
	for _, stage := range Stages {
		want = append(want, `shortfleet_mapreduce_stage_duration_seconds_count{stage="`+stage+`"} 1`)
	}
	for _, s := range want {
		if !strings.Contains(text, s) {
			t.Errorf("metrics lack %q:\n%s", s, text)
		}
	}
}

// TestNewRefusesEmptyToken: a job without the proxies' admin token could
// pull nothing; New says so rather than every run failing with 401s.
func TestNewRefusesEmptyToken(t *testing.T) {
	j, err := New(Config{Proxies: []string{"http://127.0.0.1:1"}, Dims: aggregatetest.Dims(t)}, mrtest.Quiet, nil)
	if err == nil || !strings.Contains(err.Error(), "admin token") {
		if j != nil {
			j.Close()
		}
		t.Fatalf("New with no token: %v, want an error naming the admin token", err)
	}
}

// TestNewRefusesOneConnection: a commit holds two connections at once, so
// a pool of one would hang the first run that merges stored rows; New
// refuses it and names the setting. (pgxpool connects lazily: no server.)
func TestNewRefusesOneConnection(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://shortfleet@127.0.0.1:1/shortfleet?pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	j, err := New(Config{Proxies: []string{"http://127.0.0.1:1"}, Token: mrtest.Token, Dims: aggregatetest.Dims(t)}, mrtest.Quiet, pool)
	if err == nil || !strings.Contains(err.Error(), "pool_max_conns") {
		if j != nil {
			j.Close()
		}
		t.Fatalf("New with a pool of one connection: %v, want an error naming pool_max_conns", err)
	}
}
