package ship

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"shortfleet/logfmt"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const token = "s3cret"

// folder writes n sealed segments of one record each with a real log
// writer, and an open one beside them.
func folder(t testing.TB, n int) (string, *logfmt.Writer) {
	t.Helper()
	dir := t.TempDir()
	w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "proxy-07"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	for i := range n {
		w.Append(&logfmt.Record{Time: int64(i + 1), Status: 302, LinkID: 9})
		w.Rotate()
	}
	os.WriteFile(filepath.Join(dir, "20261122T000000.000000000Z.arrows.open"), []byte("partial"), 0o644)
	return dir, w
}

// faultyIndex is a proxy's index that lists, beside its writer's pending
// segments, an entry no writer would make: as a proxy with a bug, or a
// damaged manifest, would.
type faultyIndex struct {
	*logfmt.Writer
	bad logfmt.Entry
}

func (f faultyIndex) Pending() []logfmt.Entry { return append(f.Writer.Pending(), f.bad) }

// TestClient drives the client against the real handler over a real
// listener: it lists, fetches and acknowledges; a wrong token is refused
// everywhere and acknowledges nothing; a listing entry that fails Validate
// is skipped and reported; a fetch reads no more than the entry's size.
func TestClient(t *testing.T) {
	dir, w := folder(t, 2)
	bad := w.Pending()[0]
	bad.SHA256 = "not hex"
	srv := httptest.NewServer(Handler(Folder{Proxy: "proxy-07", Dir: dir, Index: faultyIndex{w, bad}}, RequireBearer(token), quiet))
	defer srv.Close()
	ctx := context.Background()
	c := Client{BaseURL: srv.URL + "/", Token: token, HTTP: srv.Client()}

	l, skipped, err := c.List(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if l.Proxy != "proxy-07" || len(l.Segments) != 2 || l.Segments[0].Rows != 1 {
		t.Fatalf("listing %+v", l)
	}
	if len(skipped) != 1 {
		t.Fatalf("skipped %v, want the one bad entry", skipped)
	}
	e := l.Segments[0]
	data, err := c.Fetch(ctx, e)
	sum := sha256.Sum256(data)
	if err != nil || int64(len(data)) != e.Bytes || hex.EncodeToString(sum[:]) != e.SHA256 {
		t.Fatalf("fetch: %d bytes, sha %x, %v; entry %+v", len(data), sum, err, e)
	}
	// A segment longer than its entry says is read one byte past it, no
	// further: enough for the caller to see the mismatch.
	short := e
	short.Bytes = 10
	if got, err := c.Fetch(ctx, short); err != nil || len(got) != 11 {
		t.Fatalf("fetch bounded by 10 bytes: %d bytes, %v; want 11", len(got), err)
	}
	missing := e
	missing.Name = "20991122T000000.000000000Z.arrows"
	var se *StatusError
	if _, err := c.Fetch(ctx, missing); !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("fetch of a missing segment: %v, want a 404", err)
	}

	for _, wrong := range []string{"", "wrong", "s3cre", "s3cret2"} {
		wc := c
		wc.Token = wrong
		if _, _, err := wc.List(ctx, false); !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
			t.Fatalf("list with token %q: %v, want 401", wrong, err)
		}
		if _, err := wc.Fetch(ctx, e); !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
			t.Fatalf("fetch with token %q: %v, want 401", wrong, err)
		}
		if err := wc.Ack(ctx, []string{e.Name}); !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
			t.Fatalf("ack with token %q: %v, want 401", wrong, err)
		}
	}
	if n := len(w.Pending()); n != 2 {
		t.Fatalf("%d pending after acknowledgements with wrong tokens, want 2", n)
	}

	if err := c.Ack(ctx, []string{e.Name}); err != nil {
		t.Fatal(err)
	}
	if l, _, err := c.List(ctx, false); err != nil || len(l.Segments) != 1 || l.Segments[0].Name == e.Name {
		t.Fatalf("after the ack, pending %+v, %v", l.Segments, err)
	}
	if l, _, err := c.List(ctx, true); err != nil || len(l.Segments) != 2 {
		t.Fatalf("all segments: %+v, %v", l.Segments, err)
	}
	// An acknowledged segment can still be fetched (recompute, audits).
	if again, err := c.Fetch(ctx, e); err != nil || string(again) != string(data) {
		t.Fatalf("fetch after the ack: %d bytes, %v", len(again), err)
	}
	if err := c.Ack(ctx, []string{"../x"}); !errors.As(err, &se) || se.Code != http.StatusBadRequest {
		t.Fatalf("ack of a bad name: %v, want 400", err)
	}
}

// TestClientMetrics scrapes a real Prometheus handler behind the bearer
// guard, as a proxy's admin listener serves it: labelled series keep their
// labels, comments are not series, and a wrong token is an error rather
// than an empty scrape.
func TestClientMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shortfleet_proxy_requests_total", Help: "Requests."}, []string{"status"})
	lag := prometheus.NewGauge(prometheus.GaugeOpts{Name: "shortfleet_proxy_replica_lag_seconds", Help: "Lag."})
	reg.MustRegister(reqs, lag)
	reqs.WithLabelValues("302").Add(7)
	reqs.WithLabelValues("404").Add(2)
	lag.Set(0.25)
	srv := httptest.NewServer(RequireBearer(token)(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	defer srv.Close()
	c := Client{BaseURL: srv.URL, Token: token}
	m, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`shortfleet_proxy_requests_total{status="302"}`: 7,
		`shortfleet_proxy_requests_total{status="404"}`: 2,
		`shortfleet_proxy_replica_lag_seconds`:          0.25,
	}
	if len(m) != len(want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Fatalf("got %s = %v, want %v (all: %v)", k, m[k], v, m)
		}
	}
	c.Token = "wrong"
	var se *StatusError
	if m, err := c.Metrics(context.Background()); !errors.As(err, &se) || se.Code != http.StatusUnauthorized || len(m) != 0 {
		t.Fatalf("metrics with a wrong token: %v, %v; want a 401", m, err)
	}
}

// TestClientUnreachable: no answer at all is an error from every method,
// and Ready in particular says so through err, not as a reason.
func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c := Client{BaseURL: srv.URL, Token: token}
	ctx := context.Background()
	if ready, why, err := c.Ready(ctx); err == nil || ready || why != "" {
		t.Fatalf("ready of a closed listener: %v %q %v", ready, why, err)
	}
	if _, _, err := c.List(ctx, false); err == nil {
		t.Fatal("list of a closed listener succeeded")
	}
	if _, err := c.Metrics(ctx); err == nil {
		t.Fatal("metrics of a closed listener succeeded")
	}
}
