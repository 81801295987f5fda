package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"shortfleet/logfmt"
	"shortfleet/logfmt/logfmttest"
	"shortfleet/mapreduce/internal/dims"
	"shortfleet/mapreduce/internal/job"
	"shortfleet/mapreduce/internal/mrtest"
	"shortfleet/provisioning/pgcluster"
)

// records makes n realistic records.
func records(seed uint64, n int) []logfmt.Record {
	g := logfmttest.New(seed, 50, time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC), time.Minute)
	recs := make([]logfmt.Record, n)
	for i := range recs {
		g.Next(&recs[i], i, n)
	}
	return recs
}

// TestOverrunTickSkipped runs a real job on a real primary against a proxy
// whose segment download is held: a tick during that run is skipped, logged
// and counted in the metric, and the first tick after the run ends runs.
func TestOverrunTickSkipped(t *testing.T) {
	ctx := context.Background()
	_, db := pgcluster.StartTestDatabase(t)
	gate := mrtest.NewGate(1)
	defer gate.Open() // a failed test's held download must not hold up closing the proxy
	p := &mrtest.Proxy{ID: "proxy-a", Dir: t.TempDir(), Wrap: gate.Wrap}
	p.Open(t)
	p.Write(records(1, 40)...)
	j, err := job.New(job.Config{Proxies: []string{p.Srv.URL}, Token: mrtest.Token,
		Dims: dims.Config{Salt: []byte("daemon-test-salt-0123456789")}}, mrtest.Quiet, db)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	results := make(chan job.Result, 2)
	var logs bytes.Buffer // only the test goroutine's skipped tick logs to it
	runs := New(func(ctx context.Context) {
		res, err := j.Run(ctx)
		if err != nil {
			t.Errorf("run: %v", err)
		}
		results <- res
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	metric := func(name string, want int) {
		t.Helper()
		text := mrtest.Scrape(t, job.NewCollector(j, runs.Skipped))
		if line := fmt.Sprintf("shortfleet_mapreduce_%s %d\n", name, want); !strings.Contains(text, line) {
			t.Fatalf("metrics lack %q:\n%s", line, text)
		}
	}

	first := make(chan bool, 1)
	go func() { first <- runs.Tick(ctx) }()
	select {
	case <-gate.Arrived(): // the first run is pulling its segment
	case ran := <-first:
		t.Fatalf("first tick returned %v before its run pulled the segment", ran)
	}
	if runs.Tick(ctx) {
		t.Fatal("a tick while a run was going ran too")
	}
	if n := runs.Skipped(); n != 1 {
		t.Fatalf("%d ticks counted as skipped, want 1", n)
	}
	if l := logs.String(); !strings.Contains(l, `msg="previous run still going; this tick is skipped"`) || !strings.Contains(l, "skipped_total=1") {
		t.Fatalf("skip not logged: %q", l)
	}
	metric("runs_skipped_overrun_total", 1)

	gate.Open()
	if !<-first {
		t.Fatal("first tick reports it was skipped")
	}
	if res := <-results; res.Segments != 1 || res.Records != 40 {
		t.Fatalf("first run: %+v", res)
	}
	p.Write(records(2, 25)...)
	if !runs.Tick(ctx) {
		t.Fatal("the tick after the run ended was skipped")
	}
	if res := <-results; res.Segments != 1 || res.Records != 25 {
		t.Fatalf("second run: %+v", res)
	}
	if n := runs.Skipped(); n != 1 {
		t.Fatalf("%d ticks counted as skipped, want still 1", n)
	}
	metric("runs_skipped_overrun_total", 1)
	metric(`runs_total{outcome="ok"}`, 2)
}
