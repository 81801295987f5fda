package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"shortfleet/primary/internal/api"
	"shortfleet/primary/internal/store"
	"shortfleet/primary/internal/target"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/sql/codes"
)

type env struct {
	t   *testing.T
	srv *httptest.Server
	st  *store.Store
}

func setup(t *testing.T) *env {
	t.Helper()
	_, db := pgcluster.StartTestDatabase(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	codec, _ := codes.New([]byte("web-test-key-0123456789"))
	st := store.New(db, codec, logger)
	t.Cleanup(st.Close)
	policy := &target.Policy{ShortHosts: []string{"sho.rt"}}
	ui, err := New(Config{ShortBase: "https://sho.rt", Policy: policy, CSRFKey: []byte("0123456789abcdef0123456789abcdef")}, logger, st)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.New(api.Config{ShortBase: "https://sho.rt", Policy: policy}, logger, st).Register(mux)
	ui.Register(mux)
	srv := httptest.NewServer(SecurityHeaders(http.NewCrossOriginProtection().Handler(ui.Session(mux))))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, st: st}
}

// browser is a client with its own cookie jar that does not follow
// redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string) (*http.Response, string) {
	b.e.t.Helper()
	resp, err := b.c.Get(b.e.srv.URL + path)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// post submits a form, with the CSRF token of the page at from unless
// from is empty.
func (b *browser) post(from, path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	if from != "" {
		_, page := b.get(from)
		m := csrfRE.FindStringSubmatch(page)
		if m == nil {
			b.e.t.Fatalf("no CSRF token on %s", from)
		}
		form.Set("csrf", m[1])
	}
	resp, err := b.c.PostForm(b.e.srv.URL+path, form)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) signup(email string) {
	b.e.t.Helper()
	resp, body := b.post("/signup", "/signup", url.Values{"email": {email}, "password": {"a good long password"}})
	if resp.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("sign up: %d %s", resp.StatusCode, body)
	}
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
	for _, tc := range []struct{ name, path string }{{"create", "/links"}, {"logout", "/logout"}, {"key", "/keys"}} {
		resp, body := b.post("", tc.path, url.Values{"target": {"https://example.com/"}, "name": {"k"}, "csrf": {"forged"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "security token") {
			t.Errorf("%s without a valid CSRF token: %d", tc.name, resp.StatusCode)
		}
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

func TestSecurityHeaders(t *testing.T) {
	e := setup(t)
	resp, _ := e.browser().get("/login")
	for k, want := range map[string]string{
		"Content-Security-Policy": "frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
	} {
		if !strings.Contains(resp.Header.Get(k), want) {
			t.Errorf("%s: %q, want %q", k, resp.Header.Get(k), want)
		}
	}
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
