package redirect

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"shortfleet/logfmt"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/sql/codes"
)

var testKey = []byte("redirect-test-key-0123")

type env struct {
	ln      *fasthttputil.InmemoryListener
	logw    *logfmt.Writer
	logDir  string
	codec   *codes.Codec
	replica *pgcluster.Cluster
	ids     map[string]int64
}

// setup starts a primary and a streaming replica, creates links on the
// primary, waits for the replica to replay them, and serves the handler on
// an in-memory listener reading the replica.
func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	primary, conn := pgcluster.StartTestDatabase(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ids := map[string]int64{}
	for _, l := range []struct {
		name, target string
		typ          int
		disabled     bool
	}{
		{"302", "https://example.com/a?b=c", 302, false},
		{"301", "https://example.com/perm", 301, false},
		{"307", "https://example.com/temp", 307, false},
		{"308", "https://example.com/perm8", 308, false},
		{"disabled", "https://example.com/gone", 302, true},
	} {
		var id int64
		err := conn.QueryRow(ctx, `WITH u AS (INSERT INTO users (email, password_hash) VALUES ($1, 'x') RETURNING id)
			INSERT INTO links (user_id, target, redirect_type, disabled) SELECT id, $2, $3, $4 FROM u RETURNING id`,
			l.name+"@example.com", l.target, l.typ, l.disabled).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids[l.name] = id
	}
	replica := pgcluster.StartTestReplica(t, primary, "replica")
	lsn, _ := primary.CurrentLSN(ctx)
	if err := replica.WaitReplay(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, replica.DSN("shortfleet"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	dir := t.TempDir()
	logw, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "proxy-t"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	codec, _ := codes.New(testKey)
	s := New(Config{LookupTimeout: 2 * time.Second}, logger, codec, pool, logw)
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: s.Handle}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(); logw.Close() })
	return &env{ln: ln, logw: logw, logDir: dir, codec: codec, replica: replica, ids: ids}
}

func (e *env) code(t *testing.T, name string) string {
	c, err := e.codec.Encode(e.ids[name])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// raw sends a raw HTTP request and returns the response.
func (e *env) raw(t *testing.T, req string) *fasthttp.Response {
	t.Helper()
	c, err := e.ln.DialWithLocalAddr(&net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 54321})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp := &fasthttp.Response{}
	if strings.HasPrefix(req, "HEAD") {
		resp.SkipBody = true
	}
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	return resp
}

func get(method, path string, headers ...string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: sho.rt\r\n%s\r\n", method, path, strings.Join(headers, ""))
}

func TestRedirects(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct {
		name, req    string
		status       int
		location     string
		cacheControl string
		body         string
	}{
		{"302", get("GET", "/"+e.code(t, "302")), 302, "https://example.com/a?b=c", "private, no-store", ""},
		{"301", get("GET", "/"+e.code(t, "301")), 301, "https://example.com/perm", "public, max-age=86400", ""},
		{"307", get("GET", "/"+e.code(t, "307")), 307, "https://example.com/temp", "private, no-store", ""},
		{"308", get("GET", "/"+e.code(t, "308")), 308, "https://example.com/perm8", "public, max-age=86400", ""},
		{"HEAD", get("HEAD", "/"+e.code(t, "302")), 302, "https://example.com/a?b=c", "private, no-store", ""},
		{"query kept out", get("GET", "/"+e.code(t, "302")+"?utm=x"), 302, "https://example.com/a?b=c", "private, no-store", ""},
		{"disabled", get("GET", "/"+e.code(t, "disabled")), 410, "", "", "disabled"},
		{"unknown id", get("GET", "/0000001"), 404, "", "", "no such link"},
		{"not a code", get("GET", "/hello"), 404, "", "", "no such link"},
		{"root", get("GET", "/"), 404, "", "", "no such link"},
		{"nested", get("GET", "/"+e.code(t, "302")+"/x"), 404, "", "", "no such link"},
		{"POST", get("POST", "/"+e.code(t, "302"), "Content-Length: 0\r\n"), 405, "", "", "method not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.raw(t, tc.req)
			if resp.StatusCode() != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode(), tc.status)
			}
			if got := string(resp.Header.Peek("Location")); got != tc.location {
				t.Fatalf("Location %q, want %q", got, tc.location)
			}
			if got := string(resp.Header.Peek("Cache-Control")); got != tc.cacheControl {
				t.Fatalf("Cache-Control %q, want %q", got, tc.cacheControl)
			}
			if !strings.Contains(string(resp.Body()), tc.body) {
				t.Fatalf("body %q lacks %q", resp.Body(), tc.body)
			}
		})
	}
}

// TestEveryRequestLogged checks that each request answered, 404s and 405s
// included, becomes one record with what the request carried.
func TestEveryRequestLogged(t *testing.T) {
	e := setup(t)
	code := e.code(t, "302")
	reqs := []string{
		get("GET", "/"+code+"?utm_source=mail", "User-Agent: TestAgent/1.0\r\n", "Referer: https://news.example/\r\n", "Accept-Language: fr-CH, fr;q=0.9\r\n", "X-Bad: \xff\r\n"),
		get("GET", "/nothing"),
		get("HEAD", "/"+code),
		get("DELETE", "/"+code),
		get("GET", "/"+e.code(t, "disabled")),
	}
	for _, r := range reqs {
		e.raw(t, r)
	}
	if err := e.logw.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := logfmt.ReadManifest(e.logDir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("manifest %v, %v", entries, err)
	}
	f, _ := os.Open(filepath.Join(e.logDir, entries[0].Name))
	defer f.Close()
	rows, err := logfmt.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(reqs) {
		t.Fatalf("%d records, want %d", len(rows), len(reqs))
	}
	r := rows[0]
	if r.Status != 302 || r.LinkID != e.ids["302"] || r.Cache != logfmt.CacheReplica || r.Method != "GET" ||
		r.Path != "/"+code || r.Query != "utm_source=mail" || r.Host != "sho.rt" || r.Proto != "HTTP/1.1" ||
		r.UserAgent != "TestAgent/1.0" || r.Referrer != "https://news.example/" || r.AcceptLanguage != "fr-CH, fr;q=0.9" ||
		r.ClientAddr != "198.51.100.7" || r.ClientPort != 54321 || r.Proxy != "proxy-t" || r.LatencyNS <= 0 || r.Time <= 0 {
		t.Fatalf("first record %+v", r)
	}
	hdrs := map[string]string{}
	for _, h := range r.Headers {
		hdrs[h[0]] = h[1]
	}
	if hdrs["User-Agent"] != "TestAgent/1.0" || hdrs["X-Bad"] != "\uFFFD" || len(r.Headers) != 5 {
		t.Fatalf("headers %q", r.Headers)
	}
	for i, want := range []struct {
		status uint16
		link   int64
		cache  string
	}{{302, e.ids["302"], "replica"}, {404, 0, ""}, {302, e.ids["302"], "replica"}, {405, 0, ""}, {410, e.ids["disabled"], "replica"}} {
		if rows[i].Status != want.status || rows[i].LinkID != want.link || rows[i].Cache != want.cache {
			t.Errorf("record %d: status %d link %d cache %q, want %+v", i, rows[i].Status, rows[i].LinkID, rows[i].Cache, want)
		}
	}
}

// TestReplicaDown: a code that is not ours never reaches the database; a
// real code with the replica down is a 503, not a wrong 404.
func TestReplicaDown(t *testing.T) {
	e := setup(t)
	if err := e.replica.Stop(); err != nil {
		t.Fatal(err)
	}
	if resp := e.raw(t, get("GET", "/not-a-code")); resp.StatusCode() != 404 {
		t.Fatalf("non-code with replica down: %d, want 404", resp.StatusCode())
	}
	if resp := e.raw(t, get("GET", "/"+e.code(t, "302"))); resp.StatusCode() != 503 {
		t.Fatalf("code with replica down: %d, want 503", resp.StatusCode())
	}
}
