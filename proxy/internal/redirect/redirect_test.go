package redirect

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"shortfleet/logfmt"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/proxy/internal/accesslog"
	"shortfleet/proxy/internal/disktest"
	"shortfleet/proxy/internal/links"
	"shortfleet/sql/codes"
)

var testKey = []byte("redirect-test-key-0123")

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	t        testing.TB
	ln       *fasthttputil.InmemoryListener
	srv      *Server
	logw     *accesslog.Log
	logDir   string
	codec    *codes.Codec
	primary  *pgcluster.Cluster
	pdb      *pgxpool.Pool
	replica  *pgcluster.Cluster
	resolver *links.Resolver
	ids      map[string]int64
	user     int64
}

type setupOpts struct {
	replicaSettings map[string]string
	cacheBytes      int64
	maxLag          time.Duration
	trusted         []netip.Prefix
	// logDir is the access log folder (default a new temporary one);
	// logRetry how often it is tried again if it does not open, and
	// logLogger where the access log reports (default nowhere).
	logDir    string
	logRetry  time.Duration
	logLogger *slog.Logger
	// redact are more headers to redact (Config.RedactHeaders).
	redact []string
}

// setup starts a primary and a streaming replica, creates links on the
// primary, waits for the replica to replay them, and serves the handler on
// an in-memory listener, resolving through the replica (and the primary).
func setup(t *testing.T, o setupOpts) *env { return setupTB(t, o) }

// setupB is setup for benchmarks.
func setupB(b *testing.B) *env { return setupTB(b, setupOpts{}) }

func setupTB(t testing.TB, o setupOpts) *env {
	t.Helper()
	ctx := context.Background()
	primary, pdb := pgcluster.StartTestDatabase(t)
	e := &env{t: t, primary: primary, pdb: pdb, ids: map[string]int64{}}
	if err := pdb.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ('t@example.com', 'x') RETURNING id`).Scan(&e.user); err != nil {
		t.Fatal(err)
	}
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
		e.ids[l.name] = e.createLink(l.target, l.typ, l.disabled)
	}
	// A rolled-back creation leaves a gap: an id below the watermark that
	// never existed.
	tx, _ := pdb.Begin(ctx)
	var gap int64
	tx.QueryRow(ctx, `INSERT INTO links (user_id, target) VALUES ($1, 'https://x.example/') RETURNING id`, e.user).Scan(&gap)
	tx.Rollback(ctx)
	e.ids["gap"] = gap
	e.ids["after-gap"] = e.createLink("https://example.com/after", 302, false)
	if _, err := pdb.Exec(ctx, `INSERT INTO aliases (alias, link_id) VALUES ('spring-sale', $1)`, e.ids["307"]); err != nil {
		t.Fatal(err)
	}
	e.replica = pgcluster.StartTestReplicaWith(t, primary, "replica", o.replicaSettings)
	e.waitReplay()
	rdb, err := pgxpool.New(ctx, e.replica.DSN("shortfleet"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	// The 500 ms production bounds on a lookup would make a Postgres
	// answer slowed by a loaded machine a 503 here; these tests are about
	// the answers. A stopped database still fails at once (refused).
	e.resolver, err = links.New(links.Config{CacheBytes: o.cacheBytes, PollInterval: 20 * time.Millisecond, MaxLag: o.maxLag,
		LookupTimeout: 10 * time.Second, PrimaryTimeout: 10 * time.Second}, quiet, rdb, pdb)
	if err != nil {
		t.Fatal(err)
	}
	e.resolver.Poll(ctx)
	if !e.resolver.Polled() {
		t.Fatal("first poll failed")
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.resolver.Run(pctx); close(done) }()
	e.logDir = o.logDir
	if e.logDir == "" {
		e.logDir = t.TempDir()
	}
	logLogger := o.logLogger
	if logLogger == nil {
		logLogger = quiet
	}
	e.logw, err = accesslog.Open(accesslog.Config{Writer: logfmt.WriterConfig{Dir: e.logDir, Proxy: "proxy-t"}, RetryInterval: o.logRetry}, logLogger)
	if err != nil {
		t.Fatal(err)
	}
	e.codec, _ = codes.New(testKey)
	e.srv = New(Config{TrustedProxies: o.trusted, RedactHeaders: o.redact}, quiet, e.codec, e.resolver, e.logw)
	e.ln = fasthttputil.NewInmemoryListener()
	fs := &fasthttp.Server{Handler: e.srv.Handle, NoDefaultContentType: true}
	go fs.Serve(e.ln)
	t.Cleanup(func() { fs.Shutdown(); e.logw.Close(); stop(); <-done; e.resolver.Close() })
	return e
}

func (e *env) createLink(target string, typ int, disabled bool) int64 {
	e.t.Helper()
	var id int64
	err := e.pdb.QueryRow(context.Background(), `INSERT INTO links (user_id, target, redirect_type, disabled)
		VALUES ($1, $2, $3, $4) RETURNING id`, e.user, target, typ, disabled).Scan(&id)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// replicaConn connects to database db on the replica, closed when the
// test ends.
func (e *env) replicaConn(db string) *pgx.Conn {
	e.t.Helper()
	conn, err := e.replica.Connect(context.Background(), db)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (e *env) waitReplay() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lsn, err := e.primary.CurrentLSN(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.replica.WaitReplay(ctx, lsn); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) code(id int64) string {
	c, err := e.codec.Encode(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// send sends a raw HTTP request from 198.51.100.7:54321 and returns the
// connection to read the response from.
func (e *env) send(req string) net.Conn {
	e.t.Helper()
	c, err := e.ln.DialWithLocalAddr(&net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 54321})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.Write([]byte(req)); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// rawBytes sends a raw HTTP request that asks for the connection to be
// closed, and returns every byte the server sent back.
func (e *env) rawBytes(req string) []byte {
	e.t.Helper()
	c := e.send(req)
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// raw sends a raw HTTP request and returns the response.
func (e *env) raw(req string) *fasthttp.Response {
	e.t.Helper()
	c := e.send(req)
	defer c.Close()
	resp := &fasthttp.Response{}
	resp.SkipBody = strings.HasPrefix(req, "HEAD")
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func (e *env) get(path string) *fasthttp.Response { return e.raw(req("GET", path)) }

func req(method, path string, headers ...string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: sho.rt\r\n%s\r\n", method, path, strings.Join(headers, ""))
}

// records closes the log and returns every record written.
func (e *env) records() []logfmt.Row {
	e.t.Helper()
	if err := e.logw.Close(); err != nil {
		e.t.Fatal(err)
	}
	return readRecords(e.t, e.logDir)
}

// readRecords returns every record in the sealed segments of a log folder.
func readRecords(t testing.TB, dir string) []logfmt.Row {
	t.Helper()
	entries, err := logfmt.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows []logfmt.Row
	for _, en := range entries {
		f, _ := os.Open(filepath.Join(dir, en.Name))
		r, err := logfmt.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r...)
	}
	return rows
}

func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func TestRedirects(t *testing.T) {
	e := setup(t, setupOpts{})
	for _, tc := range []struct {
		name, req    string
		status       int
		location     string
		cacheControl string
		body         string
	}{
		{"302", req("GET", "/"+e.code(e.ids["302"])), 302, "https://example.com/a?b=c", "private, no-store", ""},
		{"301", req("GET", "/"+e.code(e.ids["301"])), 301, "https://example.com/perm", "public, max-age=86400", ""},
		{"307", req("GET", "/"+e.code(e.ids["307"])), 307, "https://example.com/temp", "private, no-store", ""},
		{"308", req("GET", "/"+e.code(e.ids["308"])), 308, "https://example.com/perm8", "public, max-age=86400", ""},
		{"alias", req("GET", "/spring-sale"), 307, "https://example.com/temp", "private, no-store", ""},
		{"HEAD", req("HEAD", "/"+e.code(e.ids["302"])), 302, "https://example.com/a?b=c", "private, no-store", ""},
		{"query ignored", req("GET", "/"+e.code(e.ids["302"])+"?utm=x"), 302, "https://example.com/a?b=c", "private, no-store", ""},
		{"disabled", req("GET", "/"+e.code(e.ids["disabled"])), 410, "", "no-store", "<h1>Link disabled</h1>"},
		{"unknown id below the watermark", req("GET", "/"+e.code(e.ids["gap"])), 404, "", "no-store", "<h1>Not found</h1>"},
		{"unknown alias", req("GET", "/no-such-alias"), 404, "", "no-store", "<h1>Not found</h1>"},
		{"not a code", req("GET", "/a.b"), 404, "", "no-store", "<h1>Not found</h1>"},
		{"root", req("GET", "/"), 404, "", "no-store", "<h1>Not found</h1>"},
		{"nested", req("GET", "/"+e.code(e.ids["302"])+"/x"), 404, "", "no-store", "<h1>Not found</h1>"},
		{"POST", req("POST", "/"+e.code(e.ids["302"]), "Content-Length: 0\r\n"), 405, "", "no-store", "Method not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 2 { // uncached, then cached
				resp := e.raw(tc.req)
				if resp.StatusCode() != tc.status {
					t.Fatalf("round %d: status %d, want %d", round, resp.StatusCode(), tc.status)
				}
				if got := string(resp.Header.Peek("Location")); got != tc.location {
					t.Fatalf("round %d: Location %q, want %q", round, got, tc.location)
				}
				if got := string(resp.Header.Peek("Cache-Control")); got != tc.cacheControl {
					t.Fatalf("round %d: Cache-Control %q, want %q", round, got, tc.cacheControl)
				}
				if !strings.Contains(string(resp.Body()), tc.body) {
					t.Fatalf("round %d: body %q lacks %q", round, resp.Body(), tc.body)
				}
				if tc.body != "" && string(resp.Header.ContentType()) != "text/html; charset=utf-8" {
					t.Fatalf("content type %q", resp.Header.ContentType())
				}
			}
		})
	}
	if st := e.resolver.Stats(); st.Hits == 0 || st.PrimaryAsks != 0 {
		t.Fatalf("resolver stats %+v: want cache hits and no primary asks", st)
	}
}

// TestHEADLikeGET: HEAD is answered with GET's status and headers and no
// body, for a redirect, a 404 and a 410.
func TestHEADLikeGET(t *testing.T) {
	e := setup(t, setupOpts{})
	for _, tc := range []struct {
		name, path string
		status     string
	}{
		{"redirect", "/" + e.code(e.ids["302"]), "302 Found"},
		{"unknown id", "/" + e.code(e.ids["gap"]), "404 Not Found"},
		{"unknown alias", "/no-such-alias", "404 Not Found"},
		{"not a code", "/a.b", "404 Not Found"},
		{"disabled", "/" + e.code(e.ids["disabled"]), "410 Gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 2 { // uncached, then cached
				getStatus, getHeaders, getBody := splitResponse(t, e.rawBytes(req("GET", tc.path, "Connection: close\r\n")))
				headStatus, headHeaders, headBody := splitResponse(t, e.rawBytes(req("HEAD", tc.path, "Connection: close\r\n")))
				if getStatus != "HTTP/1.1 "+tc.status || headStatus != getStatus {
					t.Fatalf("round %d: GET %q, HEAD %q, want %q", round, getStatus, headStatus, tc.status)
				}
				if len(headBody) != 0 {
					t.Fatalf("round %d: HEAD sent a body: %q", round, headBody)
				}
				if tc.status != "302 Found" && !strings.Contains(string(getBody), "<h1>") {
					t.Fatalf("round %d: GET body %q, want the page", round, getBody)
				}
				if strings.Join(headHeaders, "\n") != strings.Join(getHeaders, "\n") {
					t.Fatalf("round %d: HEAD headers\n%s\nGET headers\n%s", round, strings.Join(headHeaders, "\n"), strings.Join(getHeaders, "\n"))
				}
			}
		})
	}
}

// splitResponse splits a raw HTTP/1.1 response into its status line, its
// header lines but Date (which can change between two requests), and its
// body.
func splitResponse(t *testing.T, resp []byte) (status string, headers []string, body []byte) {
	t.Helper()
	head, rest, ok := strings.Cut(string(resp), "\r\n\r\n")
	if !ok {
		t.Fatalf("no end of headers in %q", resp)
	}
	lines := strings.Split(head, "\r\n")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "Date:") {
			headers = append(headers, l)
		}
	}
	return lines[0], headers, []byte(rest)
}

// TestEveryRequestLogged checks each request answered, 404s and 405s
// included, becomes one record with what the request carried and where it
// was answered from.
func TestEveryRequestLogged(t *testing.T) {
	e := setup(t, setupOpts{})
	code := e.code(e.ids["302"])
	reqs := []string{
		req("GET", "/"+code+"?utm_source=mail", "User-Agent: TestAgent/1.0\r\n", "Referer: https://news.example/\r\n", "Accept-Language: fr-CH, fr;q=0.9\r\n", "X-Bad: \xff\r\n"),
		req("GET", "/"+code),
		req("GET", "/nothing.here"),
		req("HEAD", "/"+code),
		req("DELETE", "/"+code),
		req("GET", "/"+e.code(e.ids["disabled"])),
	}
	for _, r := range reqs {
		e.raw(r)
	}
	rows := e.records()
	if len(rows) != len(reqs) {
		t.Fatalf("%d records, want %d", len(rows), len(reqs))
	}
	r := rows[0]
	if r.Status != 302 || r.LinkID != e.ids["302"] || r.Cache != logfmt.CacheReplica || r.Method != "GET" ||
		r.Path != "/"+code || r.Query != "utm_source=mail" || r.Host != "sho.rt" || r.Proto != "HTTP/1.1" ||
		r.UserAgent != "TestAgent/1.0" || r.Referrer != "https://news.example/" || r.AcceptLanguage != "fr-CH, fr;q=0.9" ||
		r.ClientAddr != "198.51.100.7" || r.ClientPort != 54321 || r.Proxy != "proxy-t" || r.LatencyNS <= 0 || r.Time <= 0 ||
		r.ReplicaLagNS < 0 {
		t.Fatalf("first record %+v", r)
	}
	hdrs := map[string]string{}
	for _, h := range r.Headers {
		hdrs[h[0]] = h[1]
	}
	if hdrs["X-Bad"] != "\uFFFD" || len(r.Headers) != 1 {
		t.Fatalf("headers %q", r.Headers)
	}
	for i, want := range []struct {
		status uint16
		link   int64
		cache  string
	}{{302, e.ids["302"], "replica"}, {302, e.ids["302"], "hit"}, {404, 0, ""}, {302, e.ids["302"], "hit"}, {405, 0, ""}, {410, e.ids["disabled"], "replica"}} {
		if rows[i].Status != want.status || rows[i].LinkID != want.link || rows[i].Cache != want.cache {
			t.Errorf("record %d: status %d link %d cache %q, want %+v", i, rows[i].Status, rows[i].LinkID, rows[i].Cache, want)
		}
	}
}

// TestCredentialsNotLogged: the values of Authorization, Cookie,
// Proxy-Authorization and the headers named in RedactHeaders, whatever
// their case, are logged as logfmt.Redacted under their names; every
// other header is logged as it came.
func TestCredentialsNotLogged(t *testing.T) {
	e := setup(t, setupOpts{redact: []string{"x-API-key", " X-Session-Token "}})
	code := e.code(e.ids["302"])
	e.raw(req("GET", "/"+code,
		"cookie: session=cookie-secret-1\r\n",
		"Authorization: Bearer auth-secret-2\r\n",
		"PROXY-AUTHORIZATION: Basic proxy-secret-3\r\n",
		"X-Api-Key: api-secret-4\r\n",
		"x-session-token: session-secret-5\r\n",
		"Cookie: second=cookie-secret-6\r\n",
		"X-Trace: visible-7\r\n"))
	e.raw(req("GET", "/nothing.here", "Authorization: Basic auth-secret-8\r\n"))
	rows := e.records()
	if len(rows) != 2 {
		t.Fatalf("%d records, want 2", len(rows))
	}
	var got []string
	for _, r := range rows {
		for _, h := range r.Headers {
			got = append(got, h[0]+": "+h[1])
		}
		for _, f := range []string{r.Path, r.Query, r.UserAgent, r.Referrer, r.AcceptLanguage, r.Host} {
			if strings.Contains(f, "secret") {
				t.Fatalf("a secret in a column: %+v", r)
			}
		}
	}
	want := []string{"Cookie: [redacted]", "Authorization: [redacted]", "Proxy-Authorization: [redacted]",
		"X-Api-Key: [redacted]", "X-Session-Token: [redacted]", "X-Trace: visible-7",
		"Authorization: [redacted]"}
	// fasthttp hands over a request's Cookie headers as one.
	if strings.Join(got, "\n") != strings.Join(want, "\n") || strings.Contains(strings.Join(got, "\n"), "secret") {
		t.Fatalf("headers logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReadYourWrites: with the replica's replay paused, a link created on
// the primary redirects at once, asked of the primary; a missing id below
// the watermark is a 404 without asking.
func TestReadYourWrites(t *testing.T) {
	e := setup(t, setupOpts{})
	ctx := context.Background()
	conn := e.replicaConn("postgres")
	if _, err := conn.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	id := e.createLink("https://example.com/fresh", 302, false)
	if w := e.resolver.Watermark(); w >= id {
		t.Fatalf("watermark %d already covers the new id %d with replay paused", w, id)
	}
	resp := e.get("/" + e.code(id))
	if resp.StatusCode() != 302 || string(resp.Header.Peek("Location")) != "https://example.com/fresh" {
		t.Fatalf("fresh link: %d %q", resp.StatusCode(), resp.Header.Peek("Location"))
	}
	st := e.resolver.Stats()
	if st.PrimaryAsks != 1 {
		t.Fatalf("primary asks %d, want 1", st.PrimaryAsks)
	}
	// An id never created, below the watermark: 404 with no primary ask.
	e.pdb.Exec(ctx, `DELETE FROM links WHERE id = $1`, e.ids["301"])
	e.resolver.Stats()
	if resp := e.get("/" + e.code(e.ids["disabled"]+1000)); resp.StatusCode() != 404 {
		t.Fatalf("far id: %d", resp.StatusCode())
	}
	if st2 := e.resolver.Stats(); st2.PrimaryAsks != st.PrimaryAsks+1 {
		// disabled+1000 is above the watermark and within the window: asked.
		t.Fatalf("primary asks %d after a window miss, want %d", st2.PrimaryAsks, st.PrimaryAsks+1)
	}
	before := e.resolver.Stats().PrimaryAsks
	if resp := e.get("/" + e.code(1)); resp.StatusCode() != 302 {
		t.Fatalf("id 1: %d", resp.StatusCode())
	}
	if e.resolver.Stats().PrimaryAsks != before {
		t.Fatal("a link the replica has was asked of the primary")
	}
	conn.Exec(ctx, `SELECT pg_wal_replay_resume()`)
	e.waitReplay()
	waitFor(t, "watermark", func() bool { return e.resolver.Watermark() >= id })
}

// TestRandomCodesNeverReachPrimary: 20,000 random valid codes are all 404
// and not one is asked of the primary, nor of the replica: they decode to
// ids far above the watermark, which were never issued.
func TestRandomCodesNeverReachPrimary(t *testing.T) {
	e := setup(t, setupOpts{})
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20_000 {
		if resp := e.get("/" + e.code(1+rng.Int64N(codes.MaxID))); resp.StatusCode() != 404 {
			t.Fatalf("random code: %d", resp.StatusCode())
		}
	}
	st := e.resolver.Stats()
	if st.PrimaryAsks != 0 || st.ReplicaLookups != 0 || st.WindowRejections < 19_000 {
		t.Fatalf("stats %+v: want no primary asks, no replica lookups, window rejections for nearly all", st)
	}
}

// TestNonCodesTouchNoDatabase: with both databases stopped, anything that
// is neither a code nor a known alias is still a quick 404.
func TestNonCodesTouchNoDatabase(t *testing.T) {
	e := setup(t, setupOpts{})
	e.get("/" + e.code(e.ids["302"])) // cached
	if err := e.replica.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := e.primary.Stop(); err != nil {
		t.Fatal(err)
	}
	before := e.resolver.Stats()
	for _, p := range []string{"/x", "/favicon.ico", "/robots.txt", "/unknown-alias", "/%00%ff", "/" + strings.Repeat("a", 100)} {
		if resp := e.get(p); resp.StatusCode() != 404 {
			t.Fatalf("%s: %d, want 404", p, resp.StatusCode())
		}
	}
	after := e.resolver.Stats()
	if after.ReplicaLookups != before.ReplicaLookups || after.PrimaryAsks != before.PrimaryAsks {
		t.Fatalf("a non-code reached a database: %+v -> %+v", before, after)
	}
	// No 5xx for a cached link, both databases down.
	if resp := e.get("/" + e.code(e.ids["302"])); resp.StatusCode() != 302 {
		t.Fatalf("cached link with databases down: %d", resp.StatusCode())
	}
	// An uncached one cannot be answered: 503, not a false 404.
	resp := e.get("/" + e.code(e.ids["308"]))
	if resp.StatusCode() != 503 || len(resp.Header.Peek("Retry-After")) == 0 {
		t.Fatalf("uncached link with databases down: %d", resp.StatusCode())
	}
}

// TestTakedownReachesCache: disabling a cached link on the primary makes
// the proxy answer 410 once the replica replays it and the feed is polled;
// editing its target changes the Location.
func TestTakedownReachesCache(t *testing.T) {
	e := setup(t, setupOpts{})
	code := e.code(e.ids["302"])
	if e.get("/"+code).StatusCode() != 302 || e.get("/"+code).StatusCode() != 302 {
		t.Fatal("not redirecting")
	}
	e.pdb.Exec(context.Background(), `UPDATE links SET disabled = true WHERE id = $1`, e.ids["302"])
	took := waitFor(t, "410 after disable", func() bool { return e.get("/"+code).StatusCode() == 410 })
	t.Logf("disable to 410: %s", took)
	e.pdb.Exec(context.Background(), `UPDATE links SET disabled = false, target = 'https://example.org/new' WHERE id = $1`, e.ids["302"])
	waitFor(t, "new target", func() bool {
		return string(e.get("/"+code).Header.Peek("Location")) == "https://example.org/new"
	})
	// Aliases follow the feed too.
	e.pdb.Exec(context.Background(), `INSERT INTO aliases (alias, link_id) VALUES ('new_alias', $1)`, e.ids["308"])
	waitFor(t, "new alias", func() bool { return e.get("/new_alias").StatusCode() == 308 })
	e.pdb.Exec(context.Background(), `DELETE FROM aliases WHERE alias = 'new_alias'`)
	waitFor(t, "alias gone", func() bool { return e.get("/new_alias").StatusCode() == 404 })
	if e.resolver.Stats().Evictions == 0 {
		t.Fatal("no evictions counted")
	}
}

// TestReplicaDown: cached links keep redirecting, misses go to the primary,
// and readiness says why it is not ready.
func TestReplicaDown(t *testing.T) {
	e := setup(t, setupOpts{})
	cached := e.code(e.ids["302"])
	e.get("/" + cached)
	if ok, why := e.resolver.Ready(); !ok {
		t.Fatalf("not ready before: %s", why)
	}
	if err := e.replica.Stop(); err != nil {
		t.Fatal(err)
	}
	if resp := e.get("/" + cached); resp.StatusCode() != 302 {
		t.Fatalf("cached link: %d", resp.StatusCode())
	}
	if resp := e.get("/" + e.code(e.ids["301"])); resp.StatusCode() != 301 {
		t.Fatalf("uncached link with the replica down: %d", resp.StatusCode())
	}
	if e.resolver.Stats().PrimaryAsks == 0 {
		t.Fatal("miss was not asked of the primary")
	}
	waitFor(t, "not ready", func() bool { ok, _ := e.resolver.Ready(); return !ok })
	if _, why := e.resolver.Ready(); !strings.Contains(why, "replica unreachable") {
		t.Fatalf("readiness reason %q", why)
	}
	// A takedown still arrives, through the primary's feed.
	e.pdb.Exec(context.Background(), `UPDATE links SET disabled = true WHERE id = $1`, e.ids["302"])
	waitFor(t, "410 with the replica down", func() bool { return e.get("/"+cached).StatusCode() == 410 })
}

// TestPrimaryDown: everything the replica has keeps working.
func TestPrimaryDown(t *testing.T) {
	e := setup(t, setupOpts{})
	if err := e.primary.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"302", "301", "307", "308"} {
		if resp := e.get("/" + e.code(e.ids[name])); resp.StatusCode() != int(mustAtoi(name)) {
			t.Fatalf("%s with the primary down: %d", name, resp.StatusCode())
		}
	}
	if resp := e.get("/spring-sale"); resp.StatusCode() != 307 {
		t.Fatalf("alias with the primary down: %d", resp.StatusCode())
	}
	if ok, why := e.resolver.Ready(); !ok {
		t.Fatalf("a proxy whose replica is fine is not ready: %s", why)
	}
}

func mustAtoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// TestRecoveryConflictsRetried runs uncached lookups while the primary
// takes ACCESS EXCLUSIVE locks on links, as a migration does, on a replica
// that cancels conflicting queries at once: every lookup must still answer
// 302, the cancelled ones retried.
func TestRecoveryConflictsRetried(t *testing.T) {
	e := setup(t, setupOpts{replicaSettings: map[string]string{"max_standby_streaming_delay": "0"}, cacheBytes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			e.pdb.Exec(context.Background(), `BEGIN; LOCK TABLE links IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(0.002); COMMIT`)
		}
	})
	var bad []string
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if resp := e.get("/" + e.code(e.ids["302"])); resp.StatusCode() != 302 {
					mu.Lock()
					bad = append(bad, fmt.Sprint(resp.StatusCode()))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	st := e.resolver.Stats()
	t.Logf("lookups %d, conflict retries %d, primary asks %d", st.ReplicaLookups, st.ConflictRetries, st.PrimaryAsks)
	if len(bad) > 0 {
		t.Fatalf("%d lookups not answered 302: %v", len(bad), bad[:min(len(bad), 10)])
	}
	if st.ConflictRetries == 0 {
		t.Fatal("no recovery conflict happened: the test did not exercise the retry")
	}
}

// TestClientAddress: from a trusted balancer, the client is the rightmost
// untrusted address of X-Forwarded-For, over every header line (HAProxy's
// option forwardfor adds its line after any the client sent), and its port
// is X-Client-Port only when that address is the rightmost, the one the
// balancer itself appended.
func TestClientAddress(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("10.0.0.0/8")}
	e := setup(t, setupOpts{trusted: trusted})
	code := e.code(e.ids["302"])
	cases := []struct {
		xff      []string // one header line each
		port     string   // X-Client-Port, none if empty
		want     string
		wantPort uint16
	}{
		{nil, "", "198.51.100.7", 0},
		{nil, "40000", "198.51.100.7", 0}, // the address is the balancer's: its client's port is not
		{[]string{"203.0.113.5"}, "", "203.0.113.5", 0},
		{[]string{"203.0.113.5"}, "40000", "203.0.113.5", 40000},
		{[]string{"203.0.113.5, 10.1.2.3"}, "40000", "203.0.113.5", 0},    // the balancer chain is trusted; the port was 10.1.2.3's
		{[]string{"1.2.3.4, 203.0.113.5"}, "40001", "203.0.113.5", 40001}, // a client-sent value to the left is not
		{[]string{"garbage, 203.0.113.5"}, "40002", "203.0.113.5", 40002},
		{[]string{"203.0.113.5, garbage"}, "40003", "198.51.100.7", 0}, // garbage at the right: keep the balancer
		{[]string{"garbage, 10.1.2.3"}, "40004", "10.1.2.3", 40004},
		{[]string{"10.1.2.3"}, "40005", "10.1.2.3", 40005},       // a trusted host is a client too
		{[]string{"10.0.0.1, 10.1.2.3"}, "40006", "10.0.0.1", 0}, // all trusted: the leftmost, from an earlier hop
		{[]string{"2001:db8::1"}, "65535", "2001:db8::1", 65535},
		{[]string{"::ffff:203.0.113.9"}, "1", "203.0.113.9", 1},
		{[]string{"203.0.113.66", "203.0.113.5"}, "40007", "203.0.113.5", 40007}, // the client's own line, then the balancer's
		{[]string{"203.0.113.66", "203.0.113.5, 10.1.2.3"}, "40008", "203.0.113.5", 0},
		{[]string{"203.0.113.5"}, "0", "203.0.113.5", 0},
		{[]string{"203.0.113.5"}, "65536", "203.0.113.5", 0},
		{[]string{"203.0.113.5"}, "-1", "203.0.113.5", 0},
		{[]string{"203.0.113.5"}, "+80", "203.0.113.5", 0},
		{[]string{"203.0.113.5"}, "80x", "203.0.113.5", 0},
		{[]string{"203.0.113.5"}, "0x50", "203.0.113.5", 0},
		{[]string{"203.0.113.5"}, "100000", "203.0.113.5", 0},
	}
	for _, c := range cases {
		var h []string
		for _, l := range c.xff {
			h = append(h, "X-Forwarded-For: "+l+"\r\n")
		}
		if c.port != "" {
			h = append(h, "X-Client-Port: "+c.port+"\r\n")
		}
		e.raw(req("GET", "/"+code, h...))
	}
	rows := e.records()
	for i, c := range cases {
		if rows[i].ClientAddr != c.want || rows[i].ClientPort != c.wantPort {
			t.Errorf("X-Forwarded-For %q, X-Client-Port %q: logged %s port %d, want %s port %d",
				c.xff, c.port, rows[i].ClientAddr, rows[i].ClientPort, c.want, c.wantPort)
		}
	}
}

// TestClientAddressUntrusted: a stranger's X-Forwarded-For and
// X-Client-Port are not believed; the socket's address and port are
// logged.
func TestClientAddressUntrusted(t *testing.T) {
	e := setup(t, setupOpts{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	e.raw(req("GET", "/"+e.code(e.ids["302"]), "X-Forwarded-For: 203.0.113.5\r\n", "X-Client-Port: 40000\r\n"))
	e.raw(req("GET", "/"+e.code(e.ids["302"]), "X-Client-Port: 40000\r\n"))
	rows := e.records()
	for i, r := range rows {
		if r.ClientAddr != "198.51.100.7" || r.ClientPort != 54321 {
			t.Fatalf("request %d: logged %s port %d, want the socket's 198.51.100.7 port 54321", i, r.ClientAddr, r.ClientPort)
		}
	}
	if len(rows) != 2 {
		t.Fatalf("%d records, want 2", len(rows))
	}
}

// TestProxyProtocol serves over real TCP behind the PROXY protocol
// listener: a trusted balancer's header gives the client address; a
// stranger's header is refused.
func TestProxyProtocol(t *testing.T) {
	e := setup(t, setupOpts{})
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := ProxyProtocolListener(tcp, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	fs := &fasthttp.Server{Handler: e.srv.Handle, Logger: slog.NewLogLogger(quiet.Handler(), slog.LevelError)}
	go fs.Serve(ln)
	defer fs.Shutdown()
	send := func(from string, payload string) int {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(payload))
		resp := &fasthttp.Response{}
		if err := resp.Read(bufio.NewReader(c)); err != nil {
			return 0
		}
		return resp.StatusCode()
	}
	code := e.code(e.ids["302"])
	if s := send("127.0.0.1", "PROXY TCP4 203.0.113.9 127.0.0.1 40000 8080\r\n"+req("GET", "/"+code)); s != 302 {
		t.Fatalf("through a trusted balancer: %d", s)
	}
	if s := send("127.0.0.2", "PROXY TCP4 203.0.113.66 127.0.0.1 40000 8080\r\n"+req("GET", "/"+code)); s == 302 {
		t.Fatal("a stranger's PROXY header was accepted")
	}
	if s := send("127.0.0.2", req("GET", "/"+code)); s != 302 {
		t.Fatalf("a stranger without a header: %d", s)
	}
	rows := e.records()
	addrs := map[string]bool{}
	for _, r := range rows {
		addrs[r.ClientAddr] = true
	}
	if !addrs["203.0.113.9"] || addrs["203.0.113.66"] || !addrs["127.0.0.2"] {
		t.Fatalf("logged addresses %v", addrs)
	}
}

// TestDiskFullKeepsRedirecting fills the log folder (a tiny tmpfs) while
// the proxy runs: every redirect is still answered, and the drops are
// counted.
func TestDiskFullKeepsRedirecting(t *testing.T) {
	dir := disktest.Small(t, "64k")
	e := setup(t, setupOpts{})
	w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "p", FlushRows: 50, FlushInterval: 5 * time.Millisecond}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e.srv.log = w
	code := e.code(e.ids["302"])
	for i := range 5000 {
		if resp := e.get("/" + code); resp.StatusCode() != 302 {
			t.Fatalf("request %d with the log disk full: %d", i, resp.StatusCode())
		}
	}
	waitFor(t, "drops counted", func() bool { return w.Stats().Dropped > 0 })
}
