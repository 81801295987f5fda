package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/jackc/pgx/v5/pgxpool"

	"shortfleet/primary/internal/limit"
	"shortfleet/primary/internal/store"
	"shortfleet/primary/internal/target"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/sql/codes"
)

type env struct {
	t      *testing.T
	client *http.Client
	srv    *httptest.Server
	api    *Server
	db     *pgxpool.Pool
	codec  *codes.Codec
	pg     *pgcluster.Cluster
	router routers.Router
	header http.Header // sent with every request
}

func setup(t *testing.T, limits limit.Limits) *env {
	t.Helper()
	pg, db := pgcluster.StartTestDatabase(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	codec, _ := codes.New([]byte("api-test-key-0123456789"))
	st := store.New(db, codec, logger)
	t.Cleanup(st.Close)
	s := New(Config{ShortBase: "https://sho.rt/", Policy: &target.Policy{ShortHosts: []string{"sho.rt"}, Blocked: map[string]bool{"evil.example": true}}, Limits: limits}, logger, st)
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI 3: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, client: http.DefaultClient, srv: srv, api: s, db: db, codec: codec, pg: pg, router: router}
}

// from returns the env with requests sent from another client address:
// a loopback address other than 127.0.0.1, whose connections the server
// sees as coming from ip.
func (e *env) from(ip string) *env {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c := *e
	c.client = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	return &c
}

// forwardedFor returns the env with requests carrying X-Forwarded-For:
// v, as a load balancer in front would add it.
func (e *env) forwardedFor(v string) *env {
	c := *e
	c.header = http.Header{"X-Forwarded-For": {v}}
	return &c
}

// hourly is a limit that refills nothing while a test runs.
func hourly(burst int) *limit.Limiter { return limit.New(limit.Rule{Every: time.Hour, Burst: burst}) }

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request and checks the answer against the OpenAPI document:
// the route and status must be documented, and the body must match the
// documented schema.
func (e *env) do(method, path, key, contentType, body string) answer {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range e.header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	json.Unmarshal(raw, &a.body)
	route, params, err := e.router.FindRoute(req)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound && strings.Contains(a.raw, "no such API endpoint") {
			return a // an undocumented path, answered as such
		}
		e.t.Fatalf("%s %s is not in openapi.json: %v", method, path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(raw)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		e.t.Fatalf("%s %s answered %d, which openapi.json does not describe: %v\n%s", method, path, resp.StatusCode, err, raw)
	}
	return a
}

func (e *env) json(method, path, key string, body any) answer {
	e.t.Helper()
	b, _ := json.Marshal(body)
	return e.do(method, path, key, "application/json", string(b))
}

// checkKeyHashed checks that api_keys holds key as its SHA-256, once, and
// nowhere as itself.
func (e *env) checkKeyHashed(key string) {
	e.t.Helper()
	var hashed, raw int
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE key_hash = sha256(convert_to($1, 'UTF8'))),
		count(*) FILTER (WHERE strpos(k::text, $1) > 0) FROM api_keys k`, key).Scan(&hashed, &raw); err != nil {
		e.t.Fatal(err)
	}
	if hashed != 1 || raw != 0 {
		e.t.Fatalf("api_keys holds the key's SHA-256 %d times and the key itself %d times; want 1 and 0", hashed, raw)
	}
}

func (e *env) signup(email string) string {
	e.t.Helper()
	a := e.json("POST", "/api/signup", "", map[string]string{"email": email, "password": "a good long password"})
	if a.status != http.StatusCreated {
		e.t.Fatalf("signup %s: %d %s", email, a.status, a.raw)
	}
	return a.body["api_key"].(string)
}

// TestRoutesMatchOpenAPI: every route the server registers is documented,
// and every documented operation is registered.
func TestRoutesMatchOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	s := &Server{}
	registered := map[string]bool{}
	for _, r := range s.Routes() {
		k := r.Method + " " + r.Pattern
		registered[k] = true
		if !documented[k] {
			t.Errorf("%s is served but not in openapi.json", k)
		}
		if op := doc.Paths.Find(r.Pattern).GetOperation(r.Method); op != nil && r.Auth && op.Security == nil {
			t.Errorf("%s needs a key but openapi.json does not say so", k)
		}
	}
	for k := range documented {
		if !registered[k] {
			t.Errorf("%s is in openapi.json but not served", k)
		}
	}
}

func TestSignup(t *testing.T) {
	e := setup(t, limit.Limits{})
	key := e.signup("Ann@Example.com")
	if !strings.HasPrefix(key, "sf_") {
		t.Fatalf("api key %q", key)
	}
	var hash string
	e.db.QueryRow(context.Background(), `SELECT password_hash FROM users WHERE email = 'ann@example.com'`).Scan(&hash)
	if !strings.HasPrefix(hash, "$argon2id$") {
		t.Fatalf("stored password hash %q is not argon2id", hash)
	}
	e.checkKeyHashed(key)
	for _, tc := range []struct {
		name, ct, body string
		status         int
		msg            string
	}{
		{"duplicate, other case", "application/json", `{"email":"ANN@example.com","password":"another long password"}`, 409, "exists already"},
		{"bad email", "application/json", `{"email":"not-an-email","password":"a good long password"}`, 400, "not a valid address"},
		{"display name email", "application/json", `{"email":"Ann <x@example.com>","password":"a good long password"}`, 400, "not a valid address"},
		{"short password", "application/json", `{"email":"b@example.com","password":"short"}`, 400, "password must be"},
		{"unknown field", "application/json", `{"email":"b@example.com","password":"a good long password","admin":true}`, 400, "unknown field"},
		{"not json", "application/json", `email=b`, 400, "not the JSON expected"},
		{"trailing", "application/json", `{"email":"b@example.com","password":"a good long password"} {}`, 400, "after the JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do("POST", "/api/signup", "", tc.ct, tc.body)
			if a.status != tc.status || !strings.Contains(a.raw, tc.msg) {
				t.Fatalf("got %d %s, want %d with %q", a.status, a.raw, tc.status, tc.msg)
			}
		})
	}
}

func TestSignupRateLimit(t *testing.T) {
	e := setup(t, limit.Limits{SignupPerAddr: hourly(2)})
	e.signup("r1@example.com")
	e.signup("r2@example.com")
	a := e.json("POST", "/api/signup", "", map[string]string{"email": "r3@example.com", "password": "a good long password"})
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || !strings.Contains(a.raw, "sign-ups from your address") {
		t.Fatalf("third sign-up from one address: %d %v %s", a.status, a.header, a.raw)
	}
	e.from("127.0.0.2").signup("r3@example.com")
}

// TestSignupRateLimitBehindBalancer: behind a trusted balancer, sign-ups
// are counted per client as X-Forwarded-For names it, IPv6 clients by
// their /64; a peer that is not a trusted balancer is counted as itself,
// whatever header it writes.
func TestSignupRateLimitBehindBalancer(t *testing.T) {
	e := setup(t, limit.Limits{SignupPerAddr: hourly(1), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.4/32")}})
	balancer, stranger := e.from("127.0.0.4"), e.from("127.0.0.5")
	n := 0
	signup := func(step string, from *env, xff string, want int) {
		t.Helper()
		n++
		a := from.forwardedFor(xff).json("POST", "/api/signup", "", map[string]string{"email": fmt.Sprintf("b%d@example.com", n), "password": "a good long password"})
		if a.status != want {
			t.Fatalf("%s: %d %s, want %d", step, a.status, a.raw, want)
		}
	}
	signup("a client through the balancer", balancer, "203.0.113.5", http.StatusCreated)
	signup("the same client again", balancer, "203.0.113.5", http.StatusTooManyRequests)
	signup("another client through the balancer", balancer, "203.0.113.6", http.StatusCreated)
	signup("a client naming the balancer's own hop as well", balancer, "198.51.100.1, 203.0.113.7", http.StatusCreated)
	signup("a stranger", stranger, "203.0.113.8", http.StatusCreated)
	signup("the stranger, claiming to be someone else", stranger, "203.0.113.9", http.StatusTooManyRequests)
	signup("an IPv6 client", balancer, "2001:db8:1:2::1", http.StatusCreated)
	signup("another address in its /64", balancer, "2001:db8:1:2:ffff:ffff:ffff:ffff", http.StatusTooManyRequests)
	signup("the next /64", balancer, "2001:db8:1:3::1", http.StatusCreated)
}

// createStep is one creation request in a rate-limit test, by account
// acct (0 or 1), from 127.0.0.1 or, when far, from 127.0.0.2: one link
// through POST /api/links when lines is 0, else a bulk file of that many
// lines (none when negative).
type createStep struct {
	name   string
	acct   int
	far    bool
	lines  int
	status int
	msg    string
}

// TestCreateRateLimits: creation is limited per account and per address;
// a bulk file costs one creation a line, all or none; a 429 says when to
// retry; and exactly the links of the accepted requests exist.
func TestCreateRateLimits(t *testing.T) {
	const byAccount, byAddress = "links created by your account", "links created from your address"
	for _, tc := range []struct {
		name   string
		limits limit.Limits
		steps  []createStep
	}{
		{"per account", limit.Limits{CreatePerAccount: hourly(3)}, []createStep{
			{"first", 0, false, 0, 201, ""},
			{"second", 0, false, 0, 201, ""},
			{"third", 0, false, 0, 201, ""},
			{"fourth", 0, false, 0, 429, byAccount},
			{"fourth, from another address", 0, true, 0, 429, byAccount},
			{"another account", 1, false, 0, 201, ""},
		}},
		{"per address", limit.Limits{CreatePerAddr: hourly(3)}, []createStep{
			{"first", 0, false, 0, 201, ""},
			{"second", 0, false, 0, 201, ""},
			{"third, another account", 1, false, 0, 201, ""},
			{"fourth, another account", 1, false, 0, 429, byAddress},
			{"fourth, the first account", 0, false, 0, 429, byAddress},
			{"from another address", 1, true, 0, 201, ""},
		}},
		{"bulk", limit.Limits{CreatePerAccount: hourly(5), CreatePerAddr: hourly(8)}, []createStep{
			{"3 of 5", 0, false, 3, 201, ""},
			{"3 with 2 left", 0, false, 3, 429, byAccount},
			{"2 with 2 left: the refusal cost nothing", 0, false, 2, 201, ""},
			{"one more alone", 0, false, 0, 429, byAccount},
			{"over the burst", 1, false, 6, 413, "at most 5 at once"},
			{"4 with the address's 3 left", 1, false, 4, 429, byAddress},
			{"4 from another address", 1, true, 4, 201, ""},
			{"an empty file, refused but charged one", 1, true, -1, 400, "holds no links"},
			{"then nothing is left", 1, true, 0, 429, byAccount},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, tc.limits)
			keys := []string{e.signup("c@example.com"), e.signup("d@example.com")}
			far := e.from("127.0.0.2")
			want := 0
			for _, st := range tc.steps {
				c := e
				if st.far {
					c = far
				}
				var a answer
				if st.lines == 0 {
					a = c.json("POST", "/api/links", keys[st.acct], map[string]any{"target": "https://example.com/one"})
				} else {
					var b strings.Builder
					for i := range st.lines {
						fmt.Fprintf(&b, "https://example.com/bulk/%d\n", i)
					}
					a = c.do("POST", "/api/links/bulk", keys[st.acct], "text/csv", b.String())
				}
				if a.status != st.status || !strings.Contains(a.raw, st.msg) {
					t.Fatalf("%s: got %d %s, want %d with %q", st.name, a.status, a.raw, st.status, st.msg)
				}
				if secs, err := strconv.Atoi(a.header.Get("Retry-After")); a.status == http.StatusTooManyRequests && (err != nil || secs < 1) {
					t.Fatalf("%s: Retry-After %q", st.name, a.header.Get("Retry-After"))
				}
				if a.status == http.StatusCreated {
					want += max(st.lines, 1)
				}
				var n int
				e.db.QueryRow(context.Background(), `SELECT count(*) FROM links`).Scan(&n)
				if n != want {
					t.Fatalf("%s: %d links exist, want %d", st.name, n, want)
				}
			}
		})
	}
}

func TestLinks(t *testing.T) {
	e := setup(t, limit.Limits{})
	key := e.signup("l@example.com")
	other := e.signup("o@example.com")
	a := e.json("POST", "/api/links", key, map[string]any{"target": "HTTPS://Example.COM/x?y=1"})
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	code := a.body["code"].(string)
	if _, err := e.codec.DecodeString(code); err != nil {
		t.Fatalf("code %q does not decode: %v", code, err)
	}
	if a.body["short_url"] != "https://sho.rt/"+code || a.body["target"] != "https://example.com/x?y=1" || a.body["redirect_type"] != 302.0 {
		t.Fatalf("answer %s", a.raw)
	}
	al := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.org/sale", "alias": "spring-sale", "redirect_type": 308})
	if al.status != 201 || al.body["alias_url"] != "https://sho.rt/spring-sale" {
		t.Fatalf("alias: %d %s", al.status, al.raw)
	}
	for _, tc := range []struct {
		name   string
		key    string
		body   any
		status int
		msg    string
	}{
		{"no key", "", map[string]any{"target": "https://example.com/"}, 401, "Authorization: Bearer"},
		{"bad key", "sf_nope", map[string]any{"target": "https://example.com/"}, 401, "not valid"},
		{"javascript", key, map[string]any{"target": "javascript:alert(1)"}, 400, "only http and https"},
		{"our own domain", key, map[string]any{"target": "https://sho.rt/abc"}, 400, "would loop"},
		{"blocklisted", key, map[string]any{"target": "https://www.evil.example/x"}, 400, "evil.example are not allowed"},
		{"too long", key, map[string]any{"target": "https://example.com/" + strings.Repeat("a", 3000)}, 400, "the limit is 2048"},
		{"bad type", key, map[string]any{"target": "https://example.com/", "redirect_type": 303}, 400, "not one of 301, 302, 307, 308"},
		{"alias taken", key, map[string]any{"target": "https://example.com/", "alias": "spring-sale"}, 409, "taken"},
		{"alias like a code", key, map[string]any{"target": "https://example.com/", "alias": "abc1234"}, 400, "looks like a code"},
		{"alias with a script", key, map[string]any{"target": "https://example.com/", "alias": "<script>"}, 400, "letters, digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.json("POST", "/api/links", tc.key, tc.body)
			if a.status != tc.status || !strings.Contains(a.raw, tc.msg) {
				t.Fatalf("got %d %s, want %d with %q", a.status, a.raw, tc.status, tc.msg)
			}
		})
	}
	// Get, by code and by alias; another user's link is a 404.
	if g := e.do("GET", "/api/links/"+code, key, "", ""); g.status != 200 || g.body["code"] != code {
		t.Fatalf("get: %d %s", g.status, g.raw)
	}
	if g := e.do("GET", "/api/links/spring-sale", key, "", ""); g.status != 200 || g.body["alias"] != "spring-sale" {
		t.Fatalf("get by alias: %d %s", g.status, g.raw)
	}
	for _, p := range []string{"/api/links/" + code, "/api/links/" + code + "/stats", "/api/links/spring-sale"} {
		if g := e.do("GET", p, other, "", ""); g.status != 404 {
			t.Fatalf("another user's %s: %d", p, g.status)
		}
	}
	// Edit, disable, re-enable; each writes the change feed.
	if p := e.json("PATCH", "/api/links/"+code, key, map[string]any{"target": "https://example.com/new", "redirect_type": 301}); p.status != 200 || p.body["target"] != "https://example.com/new" || p.body["redirect_type"] != 301.0 {
		t.Fatalf("edit: %d %s", p.status, p.raw)
	}
	if p := e.json("PATCH", "/api/links/"+code, key, map[string]any{"disabled": true}); p.status != 200 || p.body["disabled"] != true {
		t.Fatalf("disable: %d %s", p.status, p.raw)
	}
	if p := e.json("PATCH", "/api/links/"+code, other, map[string]any{"disabled": false}); p.status != 404 {
		t.Fatalf("another user's disable: %d", p.status)
	}
	var feed int
	e.db.QueryRow(context.Background(), `SELECT count(*) FROM link_changes WHERE alias IS NULL`).Scan(&feed)
	if feed != 2 {
		t.Fatalf("%d change feed rows, want 2", feed)
	}
	// List, search, paginate, export.
	l := e.do("GET", "/api/links?q=sale&per_page=1", key, "", "")
	if l.status != 200 || l.body["total"] != 1.0 {
		t.Fatalf("search: %d %s", l.status, l.raw)
	}
	if l := e.do("GET", "/api/links?per_page=1&page=2", key, "", ""); l.status != 200 || l.body["total"] != 2.0 || len(l.body["links"].([]any)) != 1 {
		t.Fatalf("page 2: %d %s", l.status, l.raw)
	}
	x := e.do("GET", "/api/links/export", key, "", "")
	if x.status != 200 || !strings.Contains(x.raw, "spring-sale") || strings.Count(x.raw, "\n") != 3 {
		t.Fatalf("export: %d %s", x.status, x.raw)
	}
}

func TestBulk(t *testing.T) {
	e := setup(t, limit.Limits{})
	key := e.signup("b@example.com")
	a := e.do("POST", "/api/links/bulk", key, "text/csv", "target,alias,redirect_type\nhttps://a.example/,bulk-one,301\nhttps://b.example/\n")
	if a.status != 201 || len(a.body["links"].([]any)) != 2 {
		t.Fatalf("bulk: %d %s", a.status, a.raw)
	}
	bad := e.do("POST", "/api/links/bulk", key, "text/csv", "https://c.example/\nftp://d.example/\nhttps://e.example/,x\n")
	if bad.status != 400 || len(bad.body["errors"].([]any)) != 2 {
		t.Fatalf("bulk with bad lines: %d %s", bad.status, bad.raw)
	}
	var n int
	e.db.QueryRow(context.Background(), `SELECT count(*) FROM links`).Scan(&n)
	if n != 2 {
		t.Fatalf("%d links after a refused import, want 2: all or none", n)
	}
}

func TestKeys(t *testing.T) {
	e := setup(t, limit.Limits{})
	key := e.signup("k@example.com")
	c := e.json("POST", "/api/keys", key, map[string]string{"name": "ci"})
	if c.status != 201 || c.body["api_key"] == nil {
		t.Fatalf("create key: %d %s", c.status, c.raw)
	}
	second := c.body["api_key"].(string)
	e.checkKeyHashed(second)
	l := e.do("GET", "/api/keys", second, "", "")
	if l.status != 200 || len(l.body["keys"].([]any)) != 2 || strings.Contains(l.raw, second) {
		t.Fatalf("list keys (must not show keys): %d %s", l.status, l.raw)
	}
	id := c.body["id"].(float64)
	if r := e.do("DELETE", "/api/keys/"+jsonNum(id), key, "", ""); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if a := e.json("POST", "/api/links", second, map[string]any{"target": "https://example.com/"}); a.status != 401 {
		t.Fatalf("a revoked key: %d", a.status)
	}
	if a := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/"}); a.status != 201 {
		t.Fatalf("the other key: %d", a.status)
	}
}

// TestDisableEnable: a link disabled and re-enabled through the API flips
// its state, as the API and the database see it, and writes a change feed
// row for the proxies each time.
func TestDisableEnable(t *testing.T) {
	e := setup(t, limit.Limits{})
	key := e.signup("t@example.com")
	code := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/t"}).body["code"].(string)
	id, _ := e.codec.DecodeString(code)
	for i, disabled := range []bool{true, false, true, false} {
		if p := e.json("PATCH", "/api/links/"+code, key, map[string]any{"disabled": disabled}); p.status != 200 || p.body["disabled"] != disabled {
			t.Fatalf("step %d, disabled %v: %d %s", i, disabled, p.status, p.raw)
		}
		if g := e.do("GET", "/api/links/"+code, key, "", ""); g.body["disabled"] != disabled {
			t.Fatalf("step %d: get shows %s, want disabled %v", i, g.raw, disabled)
		}
		var inDB bool
		var feed int
		if err := e.db.QueryRow(context.Background(), `SELECT disabled, (SELECT count(*) FROM link_changes WHERE link_id = $1)
			FROM links WHERE id = $1`, id).Scan(&inDB, &feed); err != nil {
			t.Fatal(err)
		}
		if inDB != disabled || feed != i+1 {
			t.Fatalf("step %d: disabled %v in the database with %d change feed rows; want %v and %d", i, inDB, feed, disabled, i+1)
		}
	}
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

func TestStats(t *testing.T) {
	e := setup(t, limit.Limits{})
	ctx := context.Background()
	key := e.signup("s@example.com")
	code := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/"}).body["code"].(string)
	id, _ := e.codec.DecodeString(code)
	h := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	for i, n := range []int{5, 7, 11} {
		e.db.Exec(ctx, `INSERT INTO clicks_hourly VALUES ($1, $2, $3, $4)`, id, h.Add(time.Duration(i)*time.Hour), n, 1)
	}
	if _, err := e.db.Exec(ctx, `INSERT INTO link_daily VALUES ($1, $2, 23, 3, $3, '{"country": {"CH": 20, "JP": 3}}')`, id, h.Truncate(24*time.Hour), []byte{'E'}); err != nil {
		t.Fatal(err)
	}
	a := e.do("GET", "/api/links/"+code+"/stats?range=24h", key, "", "")
	if a.status != 200 || a.body["clicks"] != 23.0 || a.body["bots"] != 3.0 || a.body["granularity"] != "hour" {
		t.Fatalf("stats: %d %s", a.status, a.raw)
	}
	top := a.body["top"].(map[string]any)["country"].([]any)[0].(map[string]any)
	if top["value"] != "CH" || top["clicks"] != 20.0 {
		t.Fatalf("top country %v", top)
	}
	if c := e.do("GET", "/api/links/"+code+"/stats.csv?range=7d", key, "", ""); c.status != 200 || !strings.Contains(c.raw, "country,CH,20") {
		t.Fatalf("stats csv: %d %s", c.status, c.raw)
	}
	for _, q := range []string{"?from=yesterday", "?range=7w", "?granularity=week", "?range=90d&granularity=hour"} {
		if b := e.do("GET", "/api/links/"+code+"/stats"+q, key, "", ""); b.status != 400 {
			t.Fatalf("%s: %d", q, b.status)
		}
	}
}

// TestDatabaseDown: with the primary database stopped, creation answers 503
// with Retry-After and a clear message.
func TestDatabaseDown(t *testing.T) {
	e := setup(t, limit.Limits{})
	key := e.signup("d@example.com")
	if err := e.pg.Stop(); err != nil {
		t.Fatal(err)
	}
	e.db.Reset()
	a := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/"})
	// The key check is the first thing to fail.
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !strings.Contains(a.raw, "database is unavailable") {
		t.Fatalf("got %d %v %s", a.status, a.header, a.raw)
	}
}
