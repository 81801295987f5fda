// Package mrtest is what the mapreduce tests share: proxies whose sealed
// segments a real log writer wrote and the real segment handler
// (logfmt/ship, which a proxy's admin listener mounts) lists, serves and
// acknowledges; a gate that holds and counts segment
// downloads, for tests of what a run does while pulls are in flight; and a
// scrape of the Prometheus text a collector exposes.
package mrtest

import (
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"shortfleet/logfmt"
	"shortfleet/logfmt/ship"
)

// Token is the test proxies' admin bearer token.
const Token = "job-test-token"

// Quiet is a logger that discards everything.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Proxy is one proxy's access log writer served through the real segment
// handler.
type Proxy struct {
	ID  string
	Dir string
	W   *logfmt.Writer
	Srv *httptest.Server
	// Wrap, if set, wraps the segment handler, e.g. with Gate.Wrap.
	Wrap func(http.Handler) http.Handler
}

// NewProxy opens a proxy with an empty log folder and serves it.
func NewProxy(t testing.TB, id string) *Proxy {
	p := &Proxy{ID: id, Dir: t.TempDir()}
	p.Open(t)
	return p
}

// Open opens the log writer on p.Dir (whose manifest it trusts, as a
// proxy's writer does on start-up) and serves it; both are closed when the
// test ends.
func (p *Proxy) Open(t testing.TB) {
	t.Helper()
	w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: p.Dir, Proxy: p.ID}, Quiet)
	if err != nil {
		t.Fatal(err)
	}
	p.W = w
	t.Cleanup(func() { w.Close() })
	p.Srv = p.Serve()
	t.Cleanup(p.Srv.Close)
}

// Reopen stops p's server and writer, lets edit change the log folder
// behind their back, as damage on disk or a faulty proxy would, and opens p
// again on it, at a new URL. The new writer trusts the manifest as a
// restarted proxy's does.
func (p *Proxy) Reopen(t testing.TB, edit func(dir string)) {
	t.Helper()
	p.Srv.Close()
	if err := p.W.Close(); err != nil {
		t.Fatal(err)
	}
	edit(p.Dir)
	p.Open(t)
}

// Serve starts another server of p's segment handler; the caller closes
// it.
func (p *Proxy) Serve() *httptest.Server {
	var h http.Handler = ship.Handler(ship.Folder{Proxy: p.ID, Dir: p.Dir, Index: p.W}, ship.RequireBearer(Token), Quiet)
	if p.Wrap != nil {
		h = p.Wrap(h)
	}
	return httptest.NewServer(h)
}

// Write seals one segment of recs.
func (p *Proxy) Write(recs ...logfmt.Record) {
	for i := range recs {
		p.W.Append(&recs[i])
	}
	p.W.Rotate()
}

// Gate holds every segment download (GET /segments/{name}) of the segment
// handlers it wraps until Open is called, and counts how many are in
// flight at once. A download counts from when its request reaches the
// handler until before the first byte of its answer is sent, so the count
// never exceeds the downloads the client has under way.
type Gate struct {
	n        int
	mu       sync.Mutex
	inFlight int
	max      int
	reached  bool
	arrived  chan struct{}
	open     chan struct{}
	openOnce sync.Once
}

// NewGate returns a closed gate whose Arrived fires once n downloads are
// in flight at once.
func NewGate(n int) *Gate {
	return &Gate{n: n, arrived: make(chan struct{}), open: make(chan struct{})}
}

// Arrived is closed once n downloads have been in flight at once.
func (g *Gate) Arrived() <-chan struct{} { return g.arrived }

// Open lets every held download, and every later one, through.
func (g *Gate) Open() { g.openOnce.Do(func() { close(g.open) }) }

// Max is the most downloads that were in flight at once.
func (g *Gate) Max() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// Wrap puts h's segment downloads behind the gate. A held download whose
// client gives up opens the gate for good.
func (g *Gate) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/segments/")
		if r.Method != http.MethodGet || !ok || name == "" {
			h.ServeHTTP(w, r)
			return
		}
		g.mu.Lock()
		g.inFlight++
		g.max = max(g.max, g.inFlight)
		if g.inFlight >= g.n && !g.reached {
			g.reached = true
			close(g.arrived)
		}
		g.mu.Unlock()
		select {
		case <-g.open:
		case <-r.Context().Done():
			// The client gave up before n downloads were in flight: let
			// the rest through, so that the run ends instead of hanging.
			g.Open()
		}
		// The answer is recorded, and the download stops counting, before
		// anything reaches the client, so the client cannot have finished it
		// and started the next one while it still counts.
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// Scrape returns the Prometheus text exposition of collectors.
func Scrape(t testing.TB, collectors ...prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors...)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics: status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}
