package web

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"shortfleet/primary/internal/api"
	"shortfleet/primary/internal/auth"
	"shortfleet/primary/internal/https"
	"shortfleet/primary/internal/limit"
	"shortfleet/primary/internal/store"
	"shortfleet/primary/internal/target"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/sql/codes"
)

type env struct {
	t     *testing.T
	h     http.Handler // what main serves
	srv   *httptest.Server
	st    *store.Store
	codec *codes.Codec
}

// setup starts a database and the UI and API as main puts them together,
// with the config changed by opts; a Secure config is served over TLS,
// behind https.Require as main serves it without -insecure-cookies.
func setup(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	return setupLog(t, io.Discard, opts...)
}

// setupLog is setup with the app's log written to out.
func setupLog(t *testing.T, out io.Writer, opts ...func(*Config)) *env {
	t.Helper()
	_, db := pgcluster.StartTestDatabase(t)
	logger := slog.New(slog.NewTextHandler(out, nil))
	codec, _ := codes.New([]byte("web-test-key-0123456789"))
	st := store.New(db, codec, logger)
	t.Cleanup(st.Close)
	policy := &target.Policy{ShortHosts: []string{"sho.rt"}}
	cfg := Config{ShortBase: "https://sho.rt", Policy: policy, CSRFKey: []byte("0123456789abcdef0123456789abcdef")}
	for _, o := range opts {
		o(&cfg)
	}
	ui, err := New(cfg, logger, st)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.New(api.Config{ShortBase: "https://sho.rt", Policy: policy, Limits: cfg.Limits, Hasher: cfg.Hasher}, logger, st).Register(mux)
	ui.Register(mux)
	h := http.NewCrossOriginProtection().Handler(ui.Session(mux))
	if cfg.Secure {
		h = https.Require(h, cfg.Limits.TrustedProxies, "")
	}
	h = SecurityHeaders(h)
	srv := httptest.NewUnstartedServer(h)
	srv.Config = HTTPServer(h, DefaultServerLimits(), logger)
	if cfg.Secure {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return &env{t: t, h: h, srv: srv, st: st, codec: codec}
}

// count runs a query that counts something.
func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.st.DB().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// browser is a client with its own cookie jar that does not follow
// redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser { return e.browserFrom("") }

// browserFrom is a browser whose connections come from ip, a loopback
// address other than 127.0.0.1, so that a test can be several addresses.
func (e *env) browserFrom(ip string) *browser {
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	if ip != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		tr.DialContext = d.DialContext
	}
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Transport: tr, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) read(resp *http.Response, err error) (*http.Response, string) {
	b.e.t.Helper()
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.e.t.Helper()
	return b.read(b.c.Get(b.e.srv.URL + path))
}

// csrf is the CSRF token of the form on the page at path.
func (b *browser) csrf(path string) string {
	b.e.t.Helper()
	_, page := b.get(path)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		b.e.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

// post submits a form, with the CSRF token of the page at from unless
// from is empty.
func (b *browser) post(from, path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	if from != "" {
		form.Set("csrf", b.csrf(from))
	}
	return b.read(b.c.PostForm(b.e.srv.URL+path, form))
}

// upload imports a CSV file through the form on the links page.
func (b *browser) upload(csv string) (*http.Response, string) {
	b.e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", b.csrf("/links"))
	fw, _ := mw.CreateFormFile("file", "links.csv")
	io.WriteString(fw, csv)
	mw.Close()
	return b.read(b.c.Post(b.e.srv.URL+"/links/import", mw.FormDataContentType(), &body))
}

func (b *browser) signup(email string) {
	b.e.t.Helper()
	resp, body := b.post("/signup", "/signup", url.Values{"email": {email}, "password": {"a good long password"}})
	if resp.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("sign up: %d %s", resp.StatusCode, body)
	}
}

var newKeyRE = regexp.MustCompile(`<code id="newkey">(sf_[A-Za-z0-9_-]+)</code>`)

// newKey creates an API key on the keys page and returns it.
func (b *browser) newKey(name string) string {
	b.e.t.Helper()
	resp, body := b.post("/keys", "/keys", url.Values{"name": {name}})
	m := newKeyRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusCreated || m == nil {
		b.e.t.Fatalf("create key: %d %s", resp.StatusCode, body)
	}
	return m[1]
}

// apiCreate creates a link through the API with key, returning the status.
func (e *env) apiCreate(key string) int {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/links", strings.NewReader(`{"target":"https://example.com/api"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var codeRE = regexp.MustCompile(`href="/links/([0-9A-Za-z]{7})"`)

func (b *browser) create(tgt, alias string) string {
	b.e.t.Helper()
	resp, body := b.post("/links", "/links", url.Values{"target": {tgt}, "alias": {alias}, "redirect_type": {"302"}})
	if resp.StatusCode != http.StatusCreated {
		b.e.t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	m := codeRE.FindStringSubmatch(body)
	if m == nil {
		b.e.t.Fatalf("no link on the page: %s", body)
	}
	return m[1]
}

func TestSignupLoginLogout(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("web@example.com")
	if resp, body := b.get("/links"); resp.StatusCode != 200 || !strings.Contains(body, "web@example.com") {
		t.Fatalf("links page after sign-up: %d", resp.StatusCode)
	}
	b.post("/links", "/logout", url.Values{})
	if resp, _ := b.get("/links"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("links page after log-out: %d, want a redirect to log in", resp.StatusCode)
	}
	if resp, body := b.post("/login", "/login", url.Values{"email": {"web@example.com"}, "password": {"wrong password!!"}}); resp.StatusCode != 401 || !strings.Contains(body, "Wrong email or password") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if resp, _ := b.post("/login", "/login?next=/keys", url.Values{"email": {"WEB@example.com"}, "password": {"a good long password"}}); resp.StatusCode != 303 || resp.Header.Get("Location") != "/keys" {
		t.Fatalf("log in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.post("/login", "/login?next=//evil.example/", url.Values{"email": {"web@example.com"}, "password": {"a good long password"}}); resp.Header.Get("Location") != "/links" {
		t.Fatalf("an open redirect after log-in: %s", resp.Header.Get("Location"))
	}
}

// TestSignupAnswersAlike: the browser form and the JSON API run one
// sign-up and answer every failure with the same status: 400 with the
// policy's words, 409 for an email taken, and 500, its cause logged, when
// hashing the password fails for a reason not the policy's (here costs
// argon2 refuses; the form once answered that 400, as if the password
// were wrong, and the API logged nothing).
func TestSignupAnswersAlike(t *testing.T) {
	var logs syncBuffer
	params := *auth.PasswordParams // one Hasher for both, as main gives them
	e := setupLog(t, &logs, func(c *Config) { c.Hasher = auth.Hasher{Params: &params} })
	if _, _, err := e.st.CreateUser(context.Background(), "taken@example.com", "not a real hash"); err != nil {
		t.Fatal(err)
	}
	const good = "a good long password"
	for _, tc := range []struct {
		name, email, password string
		iterations            uint32
		status                int
		msg                   string
	}{
		{"email taken", "Taken@example.com", good, 2, http.StatusConflict, "exists already"},
		{"not an email", "not-an-email", good, 2, http.StatusBadRequest, "is not a valid address"},
		{"short password", "short@example.com", "short", 2, http.StatusBadRequest, "password must be 10 to 256 characters"},
		{"hashing fails", "fails@example.com", good, 0, http.StatusInternalServerError, ""},
		{"hashing would fail, short password", "fails@example.com", "short", 0, http.StatusBadRequest, "password must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params.Iterations = tc.iterations
			before := strings.Count(logs.String(), "argon2id iterations 0")
			web, page := e.browser().post("/signup", "/signup", url.Values{"email": {tc.email}, "password": {tc.password}})
			body := `{"email":` + strconv.Quote(tc.email) + `,"password":` + strconv.Quote(tc.password) + `}`
			api, raw := e.browser().read(e.srv.Client().Post(e.srv.URL+"/api/signup", "application/json", strings.NewReader(body)))
			if web.StatusCode != tc.status || api.StatusCode != tc.status {
				t.Fatalf("the form answered %d, the API %d; want %d from both\nform: %s\nAPI: %s", web.StatusCode, api.StatusCode, tc.status, page, raw)
			}
			if !strings.Contains(html.UnescapeString(page), tc.msg) || !strings.Contains(raw, tc.msg) {
				t.Fatalf("want %q in both answers\nform: %s\nAPI: %s", tc.msg, page, raw)
			}
			if tc.status == http.StatusInternalServerError {
				if n := strings.Count(logs.String(), "argon2id iterations 0") - before; n != 2 {
					t.Fatalf("the cause is logged %d times, want once for each front end; log:\n%s", n, logs.String())
				}
				if strings.Contains(page+raw, "argon2id") {
					t.Fatalf("the cause reached the user:\nform: %s\nAPI: %s", page, raw)
				}
			}
		})
	}
	if n := e.count(`SELECT count(*) FROM users`); n != 1 {
		t.Fatalf("%d accounts, want the one taken", n)
	}
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenRE     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// submitForm posts the first form on page as a browser does: to its
// action, with its hidden fields and the fields in fill.
func (b *browser) submitForm(page string, fill url.Values) (*http.Response, string) {
	b.e.t.Helper()
	m := formActionRE.FindStringSubmatch(page)
	if m == nil {
		b.e.t.Fatalf("no form on the page: %s", page)
	}
	form := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range fill {
		form[k] = v
	}
	return b.read(b.c.PostForm(b.e.srv.URL+html.UnescapeString(m[1]), form))
}

// TestLoginReturnsToDeepLink: a visitor who opens a page while logged out
// is sent to log in and, after logging in through the form (once with a
// wrong password first), lands on that page, not on the list.
func TestLoginReturnsToDeepLink(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("deep@example.com")
	code := b.create("https://example.com/deep", "")
	for _, deep := range []string{"/links/" + code, "/links?q=deep&sort=clicks", "/keys"} {
		t.Run(deep, func(t *testing.T) {
			b.post("/login", "/logout", url.Values{})
			resp, _ := b.get(deep)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
				t.Fatalf("%s logged out: %d %q, want a redirect to log in", deep, resp.StatusCode, loc)
			}
			_, page := b.get(loc)
			// The page that says "wrong password" holds the form to try again.
			resp, page = b.submitForm(page, url.Values{"email": {"deep@example.com"}, "password": {"not the password"}})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong password: %d", resp.StatusCode)
			}
			resp, _ = b.submitForm(page, url.Values{"email": {"deep@example.com"}, "password": {"a good long password"}})
			if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != deep {
				t.Fatalf("log in from %s: %d to %q, want %q", loc, resp.StatusCode, got, deep)
			}
			if resp, _ := b.get(deep); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s after log-in: %d", deep, resp.StatusCode)
			}
		})
	}
	// A next the log-in would refuse is not put into the form at all.
	b.post("/login", "/logout", url.Values{})
	_, page := b.get("/login?next=//evil.example/")
	if strings.Contains(page, `name="next"`) {
		t.Fatalf("the log-in form carries an unsafe next: %s", page)
	}
}

// TestSessionRotatedAtLogin: a session token planted before log-in is not
// the one the account gets.
func TestSessionRotatedAtLogin(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("rot@example.com")
	u, _ := url.Parse(e.srv.URL)
	before := b.c.Jar.Cookies(u)
	b.post("/login", "/login", url.Values{"email": {"rot@example.com"}, "password": {"a good long password"}})
	after := b.c.Jar.Cookies(u)
	var s1, s2 string
	for _, c := range before {
		if c.Name == "sf_session" {
			s1 = c.Value
		}
	}
	for _, c := range after {
		if c.Name == "sf_session" {
			s2 = c.Value
		}
	}
	if s1 == "" || s2 == "" || s1 == s2 {
		t.Fatalf("session not rotated: %q -> %q", s1, s2)
	}
	if _, err := e.st.SessionUser(t.Context(), s1); err == nil {
		t.Fatal("the old session still works")
	}
}

func TestCSRFRefused(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("csrf@example.com")
	code := b.create("https://example.com/csrf", "")
	b.newKey("k0")
	links, keys := e.count(`SELECT count(*) FROM links`), e.count(`SELECT count(*) FROM api_keys WHERE revoked_at IS NULL`)
	// Every form the UI has, as registered in Register, with no token, a
	// forged one, and another browser's.
	other := e.browser()
	otherToken := other.csrf("/login")
	for _, tc := range []struct{ name, path string }{{"sign-up", "/signup"}, {"log-in", "/login"}, {"log-out", "/logout"},
		{"create", "/links"}, {"import", "/links/import"}, {"edit", "/links/" + code}, {"key", "/keys"}, {"revoke", "/keys/1/revoke"}} {
		for _, token := range []string{"", "forged", otherToken} {
			form := url.Values{"target": {"https://example.com/"}, "name": {"k"}, "action": {"disable"}, "email": {"x@example.com"}, "password": {"a good long password"}}
			if token != "" {
				form.Set("csrf", token)
			}
			resp, body := b.post("", tc.path, form)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "security token") {
				t.Errorf("%s with CSRF token %q: %d", tc.name, token, resp.StatusCode)
			}
		}
	}
	if l, k := e.count(`SELECT count(*) FROM links`), e.count(`SELECT count(*) FROM api_keys WHERE revoked_at IS NULL`); l != links || k != keys {
		t.Fatalf("refused forms changed something: links %d -> %d, keys %d -> %d", links, l, keys, k)
	}
	if resp, _ := b.get("/links"); resp.StatusCode != 200 {
		t.Fatalf("a refused log-out ended the session: %d", resp.StatusCode)
	}
	// A cross-site post is refused even with a token, by origin.
	_, page := b.get("/links")
	token := csrfRE.FindStringSubmatch(page)[1]
	req, _ := http.NewRequest("POST", e.srv.URL+"/links", strings.NewReader(url.Values{"target": {"https://example.com/"}, "csrf": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site post: %d", resp.StatusCode)
	}
}

// TestEscaping: a target and a search holding markup are shown as text.
func TestEscaping(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("xss@example.com")
	code := b.create(`https://example.com/?q=<script>alert(1)</script>&x="onmouseover="`, "")
	for _, p := range []string{"/links", "/links/" + code, "/links?q=%3Cscript%3Ealert(2)%3C/script%3E"} {
		_, body := b.get(p)
		if strings.Contains(body, "<script>") || strings.Contains(body, `"onmouseover="`) {
			t.Fatalf("%s renders markup from data:\n%s", p, body)
		}
	}
	_, body := b.get("/links/" + code)
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("the target is not shown escaped")
	}
	// An alias cannot carry markup at all.
	resp, _ := b.post("/links", "/links", url.Values{"target": {"https://example.com/"}, "alias": {"<script>"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("alias with markup: %d", resp.StatusCode)
	}
}

func TestOtherUsersLinkIs404(t *testing.T) {
	e := setup(t)
	a, b := e.browser(), e.browser()
	a.signup("a@example.com")
	b.signup("b@example.com")
	code := a.create("https://example.com/mine", "mine-only")
	for _, p := range []string{"/links/" + code, "/links/mine-only", "/links/" + code + "/qr.svg", "/links/" + code + "/stats.csv"} {
		if resp, _ := b.get(p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("another user's %s: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := b.post("/links", "/links/"+code, url.Values{"action": {"disable"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("disabling another user's link: %d", resp.StatusCode)
	}
	if resp, _ := b.get("/fleet"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the fleet page for a non-admin: %d", resp.StatusCode)
	}
}

// TestSecurityHeaders: every answer, HTML page, redirect, static file,
// JSON API answer or error, carries the security headers.
func TestSecurityHeaders(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("headers@example.com")
	code := b.create("https://example.com/h", "")
	anon := e.browser()
	check := func(what string, resp *http.Response) {
		t.Helper()
		for k, want := range map[string]string{
			"Content-Security-Policy": "frame-ancestors 'none'",
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "same-origin",
		} {
			if !strings.Contains(resp.Header.Get(k), want) {
				t.Errorf("%s (%d): %s: %q, want %q", what, resp.StatusCode, k, resp.Header.Get(k), want)
			}
		}
	}
	for _, p := range []string{"/", "/login", "/signup", "/links", "/links/" + code, "/links/" + code + "/qr.svg", "/links/" + code + "/stats.csv",
		"/links/export.csv", "/keys", "/fleet", "/links/nosuch", "/static/app.css", "/nowhere", "/api/openapi.json", "/api/links", "/api/nowhere"} {
		resp, _ := b.get(p)
		check("GET "+p, resp)
		resp, _ = anon.get(p)
		check("anonymous GET "+p, resp)
	}
	resp, _ := b.post("", "/links", url.Values{"target": {"https://example.com/"}})
	check("POST /links without a token", resp)
	resp, _ = anon.read(e.srv.Client().Post(e.srv.URL+"/api/signup", "application/json", strings.NewReader("{")))
	check("POST /api/signup, bad JSON", resp)
	resp, _ = anon.get("/login")
	for _, c := range resp.Cookies() {
		if !c.HttpOnly || c.SameSite == http.SameSiteNoneMode {
			t.Errorf("cookie %s is not HttpOnly and SameSite", c.Name)
		}
	}
}

func TestDashboardAndEdit(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("dash@example.com")
	code := b.create("https://example.com/d", "")
	resp, body := b.get("/links/" + code + "?range=24h")
	if resp.StatusCode != 200 || !strings.Contains(body, `id="chart"`) || !strings.Contains(body, "qr.svg") {
		t.Fatalf("dashboard: %d", resp.StatusCode)
	}
	if resp, svg := b.get("/links/" + code + "/qr.svg"); resp.StatusCode != 200 || !strings.HasPrefix(svg, "<svg") {
		t.Fatalf("qr: %d", resp.StatusCode)
	}
	if resp, _ := b.post("/links/"+code, "/links/"+code, url.Values{"action": {"disable"}}); resp.StatusCode != 303 {
		t.Fatalf("disable: %d", resp.StatusCode)
	}
	if _, body := b.get("/links/" + code); !strings.Contains(body, "(disabled)") {
		t.Fatal("not shown disabled")
	}
	if resp, body := b.post("/links/"+code, "/links/"+code, url.Values{"action": {"edit"}, "target": {"ftp://x"}, "redirect_type": {"301"}}); resp.StatusCode != 400 || !strings.Contains(body, "only http and https") {
		t.Fatalf("bad edit: %d", resp.StatusCode)
	}
}

func hourly(burst int) *limit.Limiter { return limit.New(limit.Rule{Every: time.Hour, Burst: burst}) }

func withLimits(l limit.Limits) func(*Config) { return func(c *Config) { c.Limits = l } }

// checkRefused checks a page refused by a rate limit: 429 with
// Retry-After in whole seconds, saying which limit.
func checkRefused(t *testing.T, step string, resp *http.Response, body, what string) {
	t.Helper()
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || err != nil || secs < 1 || !strings.Contains(body, "Too many "+what) {
		t.Fatalf("%s: %d, Retry-After %q; want 429 for %q:\n%s", step, resp.StatusCode, resp.Header.Get("Retry-After"), what, body)
	}
}

// TestSignupRateLimit: sign-ups in the browser are limited per address.
func TestSignupRateLimit(t *testing.T) {
	e := setup(t, withLimits(limit.Limits{SignupPerAddr: hourly(1)}))
	e.browser().signup("first@example.com")
	resp, body := e.browser().post("/signup", "/signup", url.Values{"email": {"second@example.com"}, "password": {"a good long password"}})
	checkRefused(t, "second sign-up", resp, body, "sign-ups from your address")
	e.browserFrom("127.0.0.2").signup("second@example.com")
}

// TestLoginRateLimits: log-in attempts are limited per address, whatever
// the account, and per account (by email, any case), whatever the
// address; a refused attempt is not even checked, right password or not.
func TestLoginRateLimits(t *testing.T) {
	const byAddress, byAccount = "log-in attempts from your address", "log-in attempts for this account"
	type attempt struct {
		name     string
		far      bool
		email    string
		password string
		status   int
		what     string
	}
	const right, wrong = "a good long password", "a wrong password"
	for _, tc := range []struct {
		name     string
		limits   limit.Limits
		attempts []attempt
	}{
		{"per address", limit.Limits{LoginPerAddr: hourly(3)}, []attempt{
			{"first", false, "a@example.com", wrong, 401, ""},
			{"another account", false, "b@example.com", wrong, 401, ""},
			{"no such account", false, "nobody@example.com", wrong, 401, ""},
			{"fourth, right password", false, "a@example.com", right, 429, byAddress},
			{"another address", true, "a@example.com", right, 303, ""},
		}},
		{"per account", limit.Limits{LoginPerAccount: hourly(2)}, []attempt{
			{"first", false, "a@example.com", wrong, 401, ""},
			{"other case, other address", true, "A@Example.COM", wrong, 401, ""},
			{"third, right password", true, "a@example.com", right, 429, byAccount},
			{"third, first address", false, "a@example.com", right, 429, byAccount},
			{"another account", false, "b@example.com", right, 303, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, withLimits(tc.limits))
			e.browser().signup("a@example.com")
			e.browser().signup("b@example.com")
			for _, a := range tc.attempts {
				b := e.browser()
				if a.far {
					b = e.browserFrom("127.0.0.2")
				}
				resp, body := b.post("/login", "/login", url.Values{"email": {a.email}, "password": {a.password}})
				if a.status == http.StatusTooManyRequests {
					checkRefused(t, a.name, resp, body, a.what)
				} else if resp.StatusCode != a.status {
					t.Fatalf("%s: %d, want %d", a.name, resp.StatusCode, a.status)
				}
			}
		})
	}
}

// TestCreateRateLimits: links created in the browser, one at a time or
// imported from a file, are limited per account and per address, from the
// same buckets as the API's: one a link, all or none.
func TestCreateRateLimits(t *testing.T) {
	const byAccount, byAddress = "links created by your account", "links created from your address"
	type step struct {
		name  string
		who   string // "a", "b": accounts at 127.0.0.1; "a far": a at 127.0.0.2; "a api": a's API key
		lines int    // 0: one link from the form; else a file of that many lines
		code  int
		what  string
	}
	for _, tc := range []struct {
		name   string
		limits limit.Limits
		steps  []step
	}{
		{"per account", limit.Limits{CreatePerAccount: hourly(4)}, []step{
			{"one", "a", 0, 201, ""},
			{"a file of 2", "a", 2, 201, ""},
			{"one through the API", "a api", 0, 201, ""},
			{"fifth", "a", 0, 429, byAccount},
			{"fifth, another address", "a far", 0, 429, byAccount},
			{"fifth, imported", "a", 1, 429, byAccount},
			{"fifth, through the API", "a api", 0, 429, byAccount},
			{"another account", "b", 0, 201, ""},
		}},
		{"per address", limit.Limits{CreatePerAddr: hourly(4)}, []step{
			{"a file of 2", "a", 2, 201, ""},
			{"one, another account", "b", 0, 201, ""},
			{"one through the API", "a api", 0, 201, ""},
			{"fifth", "b", 0, 429, byAddress},
			{"fifth, imported", "a", 1, 429, byAddress},
			{"another address", "a far", 0, 201, ""},
		}},
		{"import", limit.Limits{CreatePerAccount: hourly(5)}, []step{
			{"3 of 5", "a", 3, 201, ""},
			{"3 with 2 left", "a", 3, 429, byAccount},
			{"2 with 2 left: the refusal cost nothing", "a", 2, 201, ""},
			{"over the burst", "b", 6, 413, "at most 5 at once"},
			{"5 of 5", "b", 5, 201, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, withLimits(tc.limits))
			a, b, far := e.browser(), e.browser(), e.browserFrom("127.0.0.2")
			a.signup("a@example.com")
			b.signup("b@example.com")
			far.post("/login", "/login", url.Values{"email": {"a@example.com"}, "password": {"a good long password"}})
			key := a.newKey("limits")
			want := 0
			for _, st := range tc.steps {
				var resp *http.Response
				var body string
				br := map[string]*browser{"a": a, "b": b, "a far": far}[st.who]
				switch {
				case st.who == "a api":
					resp = &http.Response{StatusCode: e.apiCreate(key)}
				case st.lines == 0:
					resp, body = br.post("/links", "/links", url.Values{"target": {"https://example.com/one"}})
				default:
					var csv strings.Builder
					for i := range st.lines {
						fmt.Fprintf(&csv, "https://example.com/file/%d\n", i)
					}
					resp, body = br.upload(csv.String())
				}
				switch {
				case st.code == http.StatusTooManyRequests && st.who == "a api":
					if resp.StatusCode != st.code {
						t.Fatalf("%s: %d, want %d", st.name, resp.StatusCode, st.code)
					}
				case st.code == http.StatusTooManyRequests:
					checkRefused(t, st.name, resp, body, st.what)
				case resp.StatusCode != st.code || !strings.Contains(body, st.what):
					t.Fatalf("%s: %d, want %d with %q:\n%s", st.name, resp.StatusCode, st.code, st.what, body)
				}
				if st.code == http.StatusCreated {
					want += max(st.lines, 1)
				}
				if n := e.count(`SELECT count(*) FROM links`); n != want {
					t.Fatalf("%s: %d links exist, want %d", st.name, n, want)
				}
			}
		})
	}
}

// TestDisableEnable: disabling and re-enabling a link in the browser flips
// its state, offers the opposite action, and writes a change feed row for
// the proxies each time.
func TestDisableEnable(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("toggle@example.com")
	code := b.create("https://example.com/toggle", "")
	id, _ := e.codec.DecodeString(code)
	for i, action := range []string{"disable", "enable", "disable", "enable"} {
		disabled := action == "disable"
		if resp, body := b.post("/links/"+code, "/links/"+code, url.Values{"action": {action}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s %d: %d %s", action, i, resp.StatusCode, body)
		}
		_, page := b.get("/links/" + code)
		offers := "enable"
		if !disabled {
			offers = "disable"
		}
		if strings.Contains(page, "(disabled)") != disabled || !strings.Contains(page, `name="action" value="`+offers+`"`) {
			t.Fatalf("after %s %d, the page shows disabled %v, want %v, or does not offer %s", action, i, !disabled, disabled, offers)
		}
		if n := e.count(`SELECT count(*) FROM links WHERE id = $1 AND disabled = $2`, id, disabled); n != 1 {
			t.Fatalf("after %s %d, the database does not hold disabled = %v", action, i, disabled)
		}
		if n := e.count(`SELECT count(*) FROM link_changes WHERE link_id = $1`, id); n != i+1 {
			t.Fatalf("after %s %d: %d change feed rows, want %d", action, i, n, i+1)
		}
	}
}

// TestSessionCookie: the session cookie is HttpOnly and SameSite always,
// and Secure with the __Host- prefix unless -insecure-cookies, where the
// answers carry HSTS too; the session table holds only the token's
// SHA-256, never the token.
func TestSessionCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			e := setup(t, func(c *Config) { c.Secure = secure })
			b := e.browser()
			resp, _ := b.post("/signup", "/signup", url.Values{"email": {"cookie@example.com"}, "password": {"a good long password"}})
			want := "sf_session"
			if secure {
				want = "__Host-sf_session"
			}
			var session *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == want {
					session = c
				}
			}
			if session == nil || session.Value == "" {
				t.Fatalf("no %s cookie in %v", want, resp.Header["Set-Cookie"])
			}
			if session.Secure != secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Domain != "" {
				t.Fatalf("session cookie %s", session)
			}
			if resp, body := b.get("/links"); resp.StatusCode != 200 || !strings.Contains(body, "cookie@example.com") {
				t.Fatalf("the session does not work: %d", resp.StatusCode)
			} else if hsts := resp.Header.Get("Strict-Transport-Security"); (hsts == https.HSTS) != secure {
				t.Fatalf("Strict-Transport-Security %q", hsts)
			}
			token := session.Value
			if n := e.count(`SELECT count(*) FROM sessions s WHERE strpos(s::text, $1) > 0`, token); n != 0 {
				t.Fatalf("the sessions table holds the raw token")
			}
			if n := e.count(`SELECT count(*) FROM sessions WHERE token_hash = sha256(convert_to($1, 'UTF8'))`, token); n != 1 {
				t.Fatalf("%d sessions stored under the token's SHA-256, want 1", n)
			}
			b.post("/links", "/logout", url.Values{})
			if n := e.count(`SELECT count(*) FROM sessions WHERE token_hash = sha256(convert_to($1, 'UTF8'))`, token); n != 0 {
				t.Fatalf("the session outlives log-out")
			}
		})
	}
}

// TestOverviewSortByClicks: the links page sorts by clicks, most first,
// newest first among equals; by default newest first.
func TestOverviewSortByClicks(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("sort@example.com")
	clicks := map[string]int{}
	var codes []string
	for i, n := range []int{5, 50, 0, 5} {
		code := b.create(fmt.Sprintf("https://example.com/%d", i), "")
		codes = append(codes, code)
		clicks[code] = n
		id, _ := e.codec.DecodeString(code)
		if _, err := e.st.DB().Exec(context.Background(), `INSERT INTO link_daily VALUES ($1, current_date, $2, 0, $3, '{}')`, id, n, []byte{'E'}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{codes[3], codes[2], codes[1], codes[0]}},
		{"?sort=clicks", []string{codes[1], codes[3], codes[0], codes[2]}},
		{"?sort=old", codes},
	} {
		_, body := b.get("/links" + tc.query)
		var got []string
		for _, m := range codeRE.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("/links%s lists %v, want %v (clicks %v)", tc.query, got, tc.want, clicks)
		}
	}
}

// TestImportExport: a CSV file imports all its links or, with a bad line,
// none, saying which line; the export lists the account's links and only
// those.
func TestImportExport(t *testing.T) {
	e := setup(t)
	a, other := e.browser(), e.browser()
	a.signup("io@example.com")
	other.signup("other@example.com")
	other.create("https://example.com/not-yours", "not-yours")
	for _, tc := range []struct {
		name, csv string
		status    int
		msg       string
		links     int // a's links after
	}{
		{"good", "target,alias,redirect_type\nhttps://a.example/x,import-one,301\n\nhttps://b.example/y\n", 201, "2 links imported", 2},
		{"a bad line", "https://c.example/\nftp://d.example/\n", 400, "line 2", 2},
		{"an alias taken", "https://c.example/,not-yours\n", 409, "nothing was imported", 2},
		{"empty", "target\n", 400, "holds no links", 2},
		{"a formula", "https://e.example/=1,,308\n", 201, "1 links imported", 3},
	} {
		resp, body := a.upload(tc.csv)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.msg) {
			t.Fatalf("%s: %d, want %d with %q:\n%s", tc.name, resp.StatusCode, tc.status, tc.msg, body)
		}
		if _, page := a.get("/links"); !strings.Contains(page, strconv.Itoa(tc.links)+" links</span>") {
			t.Fatalf("%s: the links page does not count %d links", tc.name, tc.links)
		}
	}
	resp, csv := a.get("/links/export.csv")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "code,short_url,alias,target") ||
		!strings.Contains(lines[1], ",import-one,https://a.example/x,301,false,") || !strings.Contains(lines[2], ",,https://b.example/y,302,") ||
		!strings.Contains(csv, "https://e.example/=1") || strings.Contains(csv, "not-yours") {
		t.Fatalf("export:\n%s", csv)
	}
	if _, csv := other.get("/links/export.csv"); strings.Count(csv, "\n") != 2 || strings.Contains(csv, "a.example") {
		t.Fatalf("another account's export:\n%s", csv)
	}
	if resp, body := a.post("/links", "/links/import", url.Values{}); resp.StatusCode != 400 || !strings.Contains(body, "Choose a CSV file") {
		t.Fatalf("import without a file: %d", resp.StatusCode)
	}
}

var keyRowRE = regexp.MustCompile(`(?s)<tr><td>([^<]*)</td><td class="mono">(sf_[A-Za-z0-9_-]{6})…</td>.*?(?:action="/keys/(\d+)/revoke"|(revoked))`)

// keyRows reads the keys page: name -> prefix, revoke id ("" once
// revoked).
func (b *browser) keyRows() map[string][2]string {
	b.e.t.Helper()
	resp, body := b.get("/keys")
	if resp.StatusCode != 200 {
		b.e.t.Fatalf("keys page: %d", resp.StatusCode)
	}
	rows := map[string][2]string{}
	for _, m := range keyRowRE.FindAllStringSubmatch(body, -1) {
		rows[m[1]] = [2]string{m[2], m[3]}
	}
	return rows
}

// TestKeysPage: a key created in the browser is shown once, listed by its
// prefix only, works on the API until revoked, and is refused after; only
// its owner can revoke it.
func TestKeysPage(t *testing.T) {
	e := setup(t)
	b, other := e.browser(), e.browser()
	b.signup("keys@example.com")
	other.signup("other@example.com")
	if rows := b.keyRows(); len(rows) != 1 || rows["default"][1] == "" {
		t.Fatalf("after sign-up the keys page lists %v, want the default key", rows)
	}
	if resp, body := b.post("/keys", "/keys", url.Values{"name": {" "}}); resp.StatusCode != 400 || !strings.Contains(body, "needs a name") {
		t.Fatalf("a key without a name: %d", resp.StatusCode)
	}
	key := b.newKey("ci")
	if _, page := b.get("/keys"); strings.Contains(page, key) || strings.Contains(page, "newkey") {
		t.Fatal("the key is shown again")
	}
	rows := b.keyRows()
	if len(rows) != 2 || rows["ci"][0] != key[:9] || rows["ci"][1] == "" {
		t.Fatalf("keys page lists %v, want ci by the prefix %s", rows, key[:9])
	}
	if n := e.count(`SELECT count(*) FROM api_keys k WHERE strpos(k::text, $1) > 0`, key); n != 0 {
		t.Fatal("the api_keys table holds the raw key")
	}
	if n := e.count(`SELECT count(*) FROM api_keys WHERE name = 'ci' AND key_hash = sha256(convert_to($1, 'UTF8'))`, key); n != 1 {
		t.Fatal("the key is not stored as its SHA-256")
	}
	if code := e.apiCreate(key); code != 201 {
		t.Fatalf("the new key on the API: %d", code)
	}
	revoke := "/keys/" + rows["ci"][1] + "/revoke"
	if resp, _ := other.post("/keys", revoke, url.Values{}); resp.StatusCode != 404 {
		t.Fatalf("another account revoking the key: %d", resp.StatusCode)
	}
	if code := e.apiCreate(key); code != 201 {
		t.Fatalf("the key after another account's try: %d", code)
	}
	if resp, _ := b.post("/keys", revoke, url.Values{}); resp.StatusCode != 303 || resp.Header.Get("Location") != "/keys" {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if rows := b.keyRows(); rows["ci"][1] != "" || rows["default"][1] == "" {
		t.Fatalf("after revoking ci the page lists %v", rows)
	}
	if code := e.apiCreate(key); code != 401 {
		t.Fatalf("the revoked key on the API: %d, want 401", code)
	}
}

// TestFleetShowsSegmentsLeftPending: the fleet page shows, per run, how
// many segments the mapreduce job left pending, and says when some are of a
// format version it does not read yet, which only its upgrade cures.
func TestFleetShowsSegmentsLeftPending(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("ops@example.com")
	if err := e.st.SetAdmin(context.Background(), "ops@example.com", true); err != nil {
		t.Fatal(err)
	}
	// The rows the job writes (see mapreduce/internal/job): one run that
	// met a newer segment, one that could only not pull one.
	if _, err := e.st.DB().Exec(context.Background(), `INSERT INTO mapreduce_runs (kind, finished_at, segments, failed, unknown_version)
		VALUES ('run', now(), 3, 2, 1), ('run', now(), 1, 4, 0)`); err != nil {
		t.Fatal(err)
	}
	resp, body := b.get("/fleet")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fleet page: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`<th class="num">Left pending</th>`,
		`<td class="num">2 <span class="bad">(1 of a newer format version: upgrade mapreduce)</span></td>`,
		`<td class="num">4</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("fleet page lacks %q:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "newer format version"); n != 1 {
		t.Errorf("%d runs say a newer format version, want 1", n)
	}
}
