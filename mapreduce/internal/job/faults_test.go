package job

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/jackc/pgx/v5/pgconn"

	"shortfleet/logfmt"
	"shortfleet/mapreduce/internal/mrtest"
)

// reencode writes a segment's records again with the standard Arrow writer
// and the sealed segments' compression, giving the format version in the
// schema, as one batch or, with split > 0, as two batches of which the
// first holds split records. It returns the bytes and where the first
// batch ends.
func reencode(t *testing.T, seg []byte, version string, split int64) ([]byte, int) {
	t.Helper()
	rd, err := ipc.NewReader(bytes.NewReader(seg))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	md := rd.Schema().Metadata()
	keys, vals := md.Keys(), slices.Clone(md.Values())
	vals[slices.Index(keys, logfmt.MetaVersion)] = version
	m := arrow.NewMetadata(keys, vals)
	schema := arrow.NewSchema(rd.Schema().Fields(), &m)
	if !rd.Next() {
		t.Fatalf("segment has no batch: %v", rd.Err())
	}
	rec := array.NewRecordBatch(schema, rd.RecordBatch().Columns(), rd.RecordBatch().NumRows())
	defer rec.Release()
	if rd.Next() {
		t.Fatal("segment has more than one batch")
	}
	batches := []arrow.RecordBatch{rec}
	if split > 0 {
		batches = []arrow.RecordBatch{rec.NewSlice(0, split), rec.NewSlice(split, rec.NumRows())}
		defer batches[0].Release()
		defer batches[1].Release()
	}
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithZstd())
	firstEnd := 0
	for i, b := range batches {
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			firstEnd = buf.Len()
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), firstEnd
}

// replaceSegment writes data as segment name in dir. With vouch it also
// rewrites the segment's manifest line to match data, as a faulty proxy
// would vouch for what it wrote, so that the bytes pass verification and
// reach the decoder.
func replaceSegment(t *testing.T, dir, name string, data []byte, vouch bool) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if !vouch {
		return
	}
	entries, err := logfmt.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var manifest []byte
	for _, e := range entries {
		if e.Name == name {
			sum := sha256.Sum256(data)
			e.Bytes, e.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
		}
		line, _ := json.Marshal(e)
		manifest = append(append(manifest, line...), '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, logfmt.ManifestName), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedSegmentsQuarantined: truncated segments, and a segment
// rewritten in another format version behind its manifest line's back, are
// quarantined in the ledger with a reason naming the problem, whether their
// manifest line vouches for the damaged bytes (so they reach the decoder)
// or still describes the segment as written (so verification catches
// them); every other segment of the run is ingested, and the quarantine
// metric counts them. (A segment a newer proxy wrote in a newer version is
// not damaged: see TestNewerVersionLeftPending.)
func TestDamagedSegmentsQuarantined(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	const n = 50 // clicks in the damaged segment; it holds one 404 more
	cases := []struct {
		name   string
		damage func(t *testing.T, seg []byte) []byte
		vouch  bool
		reason []string // what the ledger's reason must say
	}{
		{"truncated inside a batch", func(t *testing.T, seg []byte) []byte {
			return seg[:len(seg)-20] // the end-of-stream marker is 8 bytes: this cuts into the batch's body
		}, true, []string{"corrupt segment", "read message body: unexpected EOF"}},
		{"truncated after a whole batch", func(t *testing.T, seg []byte) []byte {
			two, firstEnd := reencode(t, seg, fmt.Sprint(logfmt.SealedVersion), 20)
			return two[:firstEnd]
		}, true, []string{"corrupt segment", fmt.Sprintf("has 20 records, manifest says %d", n+1)}},
		{"truncated, manifest as written", func(t *testing.T, seg []byte) []byte {
			return seg[:len(seg)-20]
		}, false, []string{"corrupt segment", "bytes, manifest says"}},
		{"future version, manifest as written", func(t *testing.T, seg []byte) []byte {
			v5, _ := reencode(t, seg, fmt.Sprint(logfmt.SealedVersion+1), 0)
			if len(v5) != len(seg) {
				t.Fatalf("version %d copy has %d bytes, the segment %d: the checksum, not the size, must tell them apart", logfmt.SealedVersion+1, len(v5), len(seg))
			}
			return v5
		}, false, []string{"corrupt segment", "checksum mismatch"}},
	}
	w := want{}
	var urls []string
	damaged := map[string]string{} // proxy: damaged segment
	for i, tc := range cases {
		link := int64(10 * (i + 1))
		p := &proxyLogs{mrtest.NewProxy(t, fmt.Sprintf("proxy-%d", i))}
		p.write(w, clicks(4, link, t0, false)...)
		p.write(nil, clicks(n, link+1, t0, false)...)
		p.write(w, clicks(6, link+2, t0, true)...)
		name := p.W.Pending()[1].Name
		data, err := os.ReadFile(filepath.Join(p.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		p.Reopen(t, func(dir string) { replaceSegment(t, dir, name, tc.damage(t, data), tc.vouch) })
		urls = append(urls, p.Srv.URL)
		damaged[p.ID] = name
	}

	j := newJob(t, db, Config{Proxies: urls})
	res, err := j.Run(ctx)
	if err != nil || res.Quarantined != len(cases) || res.Segments != 2*len(cases) || len(res.Failed) != 0 {
		t.Fatalf("run: %+v, %v; want %d quarantined and %d ingested", res, err, len(cases), 2*len(cases))
	}
	equal(t, stored(t, db), w)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proxy := fmt.Sprintf("proxy-%d", i)
			var status, reason string
			if err := db.QueryRow(ctx, `SELECT status, reason FROM ingested_segments WHERE proxy = $1 AND name = $2`,
				proxy, damaged[proxy]).Scan(&status, &reason); err != nil {
				t.Fatalf("ledger row of the damaged segment: %v", err)
			}
			if status != "quarantined" {
				t.Fatalf("damaged segment is %s, want quarantined", status)
			}
			for _, s := range tc.reason {
				if !strings.Contains(reason, s) {
					t.Errorf("reason %q does not say %q", reason, s)
				}
			}
			var ingested int
			db.QueryRow(ctx, `SELECT count(*) FROM ingested_segments WHERE proxy = $1 AND status = 'ingested'`, proxy).Scan(&ingested)
			if ingested != 2 {
				t.Errorf("%d of the proxy's two good segments ingested", ingested)
			}
		})
	}
	text := mrtest.Scrape(t, NewCollector(j, func() uint64 { return 0 }))
	if line := fmt.Sprintf("shortfleet_mapreduce_segments_quarantined_total %d\n", len(cases)); !strings.Contains(text, line) {
		t.Fatalf("metrics lack %q:\n%s", line, text)
	}
}

// runHeld starts j.Run and waits until the gate holds the downloads it
// waits for; the run's answer comes on the channel returned, once the test
// opens the gate.
func runHeld(t *testing.T, j *Job, gate *mrtest.Gate) <-chan runResult {
	t.Helper()
	done := make(chan runResult, 1)
	go func() {
		res, err := j.Run(context.Background())
		done <- runResult{res, err}
	}()
	select {
	case <-gate.Arrived():
	case r := <-done:
		t.Fatalf("run ended (%+v, %v) before the gate held its downloads", r.res, r.err)
	}
	return done
}

type runResult struct {
	res Result
	err error
}

// TestPullsBounded: segment downloads in flight at once reach
// Config.Parallel and never exceed it. Reaching it is certain: the gate
// holds each download until Parallel of them are in flight. Going over it
// is caught when the extra download arrives before the gate opens, which a
// correct run can never cause, so the check cannot fail wrongly. (Maps run
// in the same bounded workers, right after their pull.)
func TestPullsBounded(t *testing.T) {
	db := setupDB(t)
	for _, parallel := range []int{1, 3} {
		t.Run(fmt.Sprintf("parallel=%d", parallel), func(t *testing.T) {
			gate := mrtest.NewGate(parallel)
			defer gate.Open()
			var urls []string
			segments := 0
			for i := range 2 {
				p := &mrtest.Proxy{ID: fmt.Sprintf("proxy-%d-%d", parallel, i), Dir: t.TempDir(), Wrap: gate.Wrap}
				p.Open(t)
				for range 2*parallel + 1 {
					p.Write(clicks(3, int64(100*parallel+i), t0, false)...)
					segments++
				}
				urls = append(urls, p.Srv.URL)
			}
			// The timeout only ends downloads held by a run that never gets
			// Parallel of them going, so that it fails instead of hanging.
			j := newJob(t, db, Config{Proxies: urls, Parallel: parallel, HTTPTimeout: 30 * time.Second})
			done := runHeld(t, j, gate)
			gate.Open()
			if r := <-done; r.err != nil || r.res.Segments != segments || len(r.res.Failed) != 0 {
				t.Fatalf("run: %+v, %v; want %d segments ingested", r.res, r.err, segments)
			}
			if m := gate.Max(); m != parallel {
				t.Fatalf("%d segment downloads in flight at once, want at most and at least %d", m, parallel)
			}
		})
	}
}

// TestFailedRunRecorded: a run whose transaction on the primary fails (a
// ledger row for its segment was committed meanwhile, as if the run lock
// had been bypassed) commits nothing, returns the error, and records it in
// mapreduce_runs; the next run skips the segment the ledger now holds.
func TestFailedRunRecorded(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	gate := mrtest.NewGate(1)
	defer gate.Open()
	p := &mrtest.Proxy{ID: "proxy-a", Dir: t.TempDir(), Wrap: gate.Wrap}
	p.Open(t)
	p.Write(clicks(5, 1, t0, false)...)
	e := p.W.Pending()[0]
	j := newJob(t, db, Config{Proxies: []string{p.Srv.URL}})

	done := runHeld(t, j, gate)
	sum, _ := hex.DecodeString(e.SHA256)
	if _, err := db.Exec(ctx, `INSERT INTO ingested_segments (proxy, name, sha256, rows, bytes) VALUES ($1, $2, $3, $4, $5)`,
		p.ID, e.Name, sum, e.Rows, e.Bytes); err != nil {
		t.Fatal(err)
	}
	gate.Open()
	r := <-done
	var pgErr *pgconn.PgError
	if !errors.As(r.err, &pgErr) || pgErr.Code != "23505" || !strings.HasPrefix(r.err.Error(), "commit run: ") {
		t.Fatalf("run: %v, want the commit's unique violation", r.err)
	}
	var (
		finished bool
		segments int
		recorded *string
	)
	if err := db.QueryRow(ctx, `SELECT finished_at IS NOT NULL, segments, error FROM mapreduce_runs WHERE id = $1`, r.res.RunID).
		Scan(&finished, &segments, &recorded); err != nil {
		t.Fatal(err)
	}
	if !finished || segments != 0 || recorded == nil || *recorded != r.err.Error() {
		t.Fatalf("runs table: finished %v, %d segments, error %v; want finished, 0, %q", finished, segments, recorded, r.err)
	}
	if got := stored(t, db); len(got) != 0 {
		t.Fatalf("a failed run stored %v", got)
	}
	text := mrtest.Scrape(t, NewCollector(j, func() uint64 { return 0 }))
	if line := "shortfleet_mapreduce_runs_total{outcome=\"failed\"} 1\n"; !strings.Contains(text, line) {
		t.Fatalf("metrics lack %q:\n%s", line, text)
	}

	res, err := j.Run(ctx)
	if err != nil || res.Segments != 0 || len(p.W.Pending()) != 0 {
		t.Fatalf("next run: %+v, %v; want the segment skipped and acknowledged", res, err)
	}
	var failed int
	db.QueryRow(ctx, `SELECT count(*) FROM mapreduce_runs WHERE error IS NOT NULL`).Scan(&failed)
	if failed != 1 {
		t.Fatalf("%d runs recorded as failed, want 1", failed)
	}
}

// TestNewerVersionLeftPending: a proxy upgraded before the mapreduce host
// writes a segment in a format version this build does not read, its
// manifest line vouching for it. Each run leaves it pending, neither
// quarantined nor acknowledged, counts it in the failed-segments metric
// and in the run's row, and ingests the proxy's other segments. Once it is
// readable it is ingested by the next run. One build reads a fixed set of
// versions, so the upgrade is played by the proxy serving the segment's
// records as the version 2 it first sealed them in, under the same name.
func TestNewerVersionLeftPending(t *testing.T) {
	ctx := context.Background()
	db := setupDB(t)
	w := want{}
	p := newProxyLogs(t, "proxy-new")
	p.write(w, clicks(4, 1, t0, false)...)
	newer := clicks(7, 2, t0, true)
	p.write(nil, newer...)
	p.write(w, clicks(5, 3, t0.Add(time.Hour), false)...)
	name := p.W.Pending()[1].Name
	sealed, err := os.ReadFile(filepath.Join(p.Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	const version = logfmt.SealedVersion + 1
	v3, _ := reencode(t, sealed, fmt.Sprint(version), 0)
	// The newer proxy's manifest line names its version, and vouches for
	// its bytes.
	setVersion := func(dir string, v int) {
		entries, err := logfmt.ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		var manifest []byte
		for _, e := range entries {
			if e.Name == name {
				e.Version = v
			}
			line, _ := json.Marshal(e)
			manifest = append(append(manifest, line...), '\n')
		}
		if err := os.WriteFile(filepath.Join(dir, logfmt.ManifestName), manifest, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.Reopen(t, func(dir string) {
		replaceSegment(t, dir, name, v3, true)
		setVersion(dir, version)
	})
	j := newJob(t, db, Config{Proxies: []string{p.Srv.URL}})

	for run := 1; run <= 2; run++ {
		res, err := j.Run(ctx)
		if err != nil || res.Quarantined != 0 || len(res.Failed) != 1 || res.Failed[0] != p.ID+"/"+name || res.UnknownVersion != 1 {
			t.Fatalf("run %d: %+v, %v; want the version %d segment failed, none quarantined", run, res, err, version)
		}
		if run == 1 && res.Segments != 2 {
			t.Fatalf("run 1 ingested %d segments, want the 2 readable ones", res.Segments)
		}
		if run == 2 && res.Segments != 0 {
			t.Fatalf("run 2 ingested %d segments, want none", res.Segments)
		}
		var ledger int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM ingested_segments WHERE name = $1`, name).Scan(&ledger); err != nil {
			t.Fatal(err)
		}
		if ledger != 0 {
			t.Fatalf("run %d: the version %d segment has a ledger row", run, version)
		}
		if pending := p.W.Pending(); len(pending) != 1 || pending[0].Name != name {
			t.Fatalf("run %d: the proxy lists %v as pending, want only %s", run, pending, name)
		}
		var failed, unknown int
		if err := db.QueryRow(ctx, `SELECT failed, unknown_version FROM mapreduce_runs WHERE id = $1`, res.RunID).
			Scan(&failed, &unknown); err != nil {
			t.Fatal(err)
		}
		if failed != 1 || unknown != 1 {
			t.Fatalf("run %d's row: %d failed, %d of an unknown version; want 1 and 1", run, failed, unknown)
		}
		text := mrtest.Scrape(t, NewCollector(j, func() uint64 { return 0 }))
		for _, line := range []string{
			fmt.Sprintf("shortfleet_mapreduce_segments_failed_total{reason=\"unknown_version\"} %d\n", run),
			"shortfleet_mapreduce_segments_failed_total{reason=\"other\"} 0\n",
			"shortfleet_mapreduce_segments_quarantined_total 0\n",
		} {
			if !strings.Contains(text, line) {
				t.Fatalf("run %d: metrics lack %q:\n%s", run, line, text)
			}
		}
		equal(t, stored(t, db), w)
	}

	// The segment becomes readable: the next run, of the upgraded job,
	// ingests it.
	p.Reopen(t, func(dir string) {
		replaceSegment(t, dir, name, sealed, true)
		setVersion(dir, logfmt.SealedVersion)
	})
	res, err := newJob(t, db, Config{Proxies: []string{p.Srv.URL}}).Run(ctx)
	if err != nil || res.Segments != 1 || len(res.Failed) != 0 || res.UnknownVersion != 0 || res.Quarantined != 0 {
		t.Fatalf("run after the upgrade: %+v, %v; want the segment ingested", res, err)
	}
	w.add(newer)
	equal(t, stored(t, db), w)
	if pending := p.W.Pending(); len(pending) != 0 {
		t.Fatalf("the proxy still lists %v as pending", pending)
	}
}
