package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"shortfleet/logfmt/ship"
	"shortfleet/provisioning/bintest"
	"shortfleet/provisioning/pgcluster"
)

var (
	adminRE = regexp.MustCompile(`msg="listening on (http://[^"\s]+)".*\blistener=admin`)
	csrfRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	keyRE   = regexp.MustCompile(`"api_key":"([^"]+)"`)
)

// TestMetrics starts the real binary with an admin listener, uses it as a
// stranger, a browser and an API client would (pages, a link's page by its
// code, a path no route has, log-ins wrong in every way and one right,
// sign-ups past their rate limit, links created one at a time and from a
// CSV file, bad API keys), and reads /metrics: requests are counted by
// route pattern and status (no code, no stranger's path as a label),
// timed per route, and every refusal is counted by its reason or limiter,
// beside the database pool's use and errors. /metrics answers only the
// read token, and only on the admin listener.
func TestMetrics(t *testing.T) {
	c, _ := pgcluster.StartTestDatabase(t)
	const token = "read-token-for-the-metrics-test"
	env := bintest.CleanEnv("SHORTFLEET_CODE_KEY=00112233445566778899aabbccddeeff", "SHORTFLEET_DSN="+c.DSN("shortfleet"),
		"SHORTFLEET_READ_TOKEN="+token)
	base, out := start(t, env, "-insecure-cookies", "-admin-listen", "127.0.0.1:0", "-rate-signup", "2/1h")
	var admin string
	for deadline := time.Now().Add(time.Minute); admin == ""; time.Sleep(10 * time.Millisecond) {
		if m := adminRE.FindStringSubmatch(out()); m != nil {
			admin = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no admin listener reported:\n%s", out())
		}
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(c *http.Client, method, path, body string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	expect := func(what string, got, want int) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: status %d, want %d", what, got, want)
		}
	}
	form := "Content-Type"
	formType := "application/x-www-form-urlencoded"

	// Sign-ups through the API: two pass, the third is over -rate-signup.
	var key string
	for i, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		status, body := do(http.DefaultClient, "POST", "/api/signup", `{"email":"`+email+`","password":"correct horse battery"}`)
		if i < 2 {
			expect("sign-up", status, 201)
		} else {
			expect("sign-up over the limit", status, 429)
		}
		if m := keyRE.FindStringSubmatch(body); m != nil && key == "" {
			key = m[1]
		}
	}
	bearer := []string{"Authorization", "Bearer " + key}
	status, _ := do(http.DefaultClient, "POST", "/api/links", `{"target":"https://example.com/one"}`, bearer...)
	expect("create", status, 201)
	status, _ = do(http.DefaultClient, "POST", "/api/links/bulk", "https://example.com/two\nhttps://example.com/three\n", append(bearer, "Content-Type", "text/csv")...)
	expect("bulk create", status, 201)
	status, _ = do(http.DefaultClient, "GET", "/api/links", "", "Authorization", "Bearer not-a-key")
	expect("a bad API key", status, 401)
	status, _ = do(http.DefaultClient, "GET", "/api/links", "")
	expect("no API key", status, 401)

	// The browser: pages, a link's page by its code, no such path.
	status, page := do(browser, "GET", "/login", "")
	expect("log-in page", status, 200)
	csrf := csrfRE.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("no CSRF token on the log-in page:\n%s", page)
	}
	status, _ = do(browser, "GET", "/links/abcdefg", "")
	expect("a link's page without a session", status, 303)
	status, _ = do(browser, "GET", "/no/such/page-xyz", "")
	expect("no such page", status, 404)
	logIn := func(email, password, token string, header ...string) int {
		v := url.Values{"email": {email}, "password": {password}, "csrf": {token}}
		status, _ := do(browser, "POST", "/login", v.Encode(), append([]string{form, formType}, header...)...)
		return status
	}
	expect("a wrong password", logIn("a@example.com", "wrong password!", csrf[1]), 401)
	expect("an unknown account", logIn("nobody@example.com", "correct horse battery", csrf[1]), 401)
	expect("no CSRF token", logIn("a@example.com", "correct horse battery", ""), 403)
	expect("a cross-site post", logIn("a@example.com", "correct horse battery", csrf[1], "Sec-Fetch-Site", "cross-site"), 403)
	expect("the right password", logIn("a@example.com", "correct horse battery", csrf[1]), 303)

	// /metrics: not on the public listener, not without the read token.
	status, _ = do(http.DefaultClient, "GET", "/metrics", "", "Authorization", "Bearer "+token)
	expect("/metrics on the public listener", status, 404)
	for _, tok := range []string{"", "wrong", token + "x"} {
		if _, err := (ship.Client{BaseURL: admin, Token: tok}).Metrics(t.Context()); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("/metrics with token %q: %v, want 401", tok, err)
		}
	}
	m, err := ship.Client{BaseURL: admin, Token: token}.Metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		`shortfleet_app_requests_total{route="POST /api/signup",status="201"}`:         2,
		`shortfleet_app_requests_total{route="POST /api/signup",status="429"}`:         1,
		`shortfleet_app_requests_total{route="GET /links/{code}",status="303"}`:        1,
		`shortfleet_app_requests_total{route="unmatched",status="404"}`:                2, // no such page, and /metrics here
		`shortfleet_app_requests_total{route="POST /login",status="401"}`:              2,
		`shortfleet_app_requests_total{route="POST /login",status="403"}`:              2,
		`shortfleet_app_requests_total{route="POST /login",status="303"}`:              1,
		`shortfleet_app_request_duration_seconds_count{route="POST /api/signup"}`:      3,
		`shortfleet_app_request_duration_seconds_bucket{route="GET /login",le="+Inf"}`: 1,
		`shortfleet_app_links_created_total{source="api"}`:                             1,
		`shortfleet_app_links_created_total{source="api_bulk"}`:                        2,
		`shortfleet_app_links_created_total{source="web"}`:                             0,
		`shortfleet_app_logins_total`:                                                  1,
		`shortfleet_app_auth_refusals_total{reason="bad_password"}`:                    1,
		`shortfleet_app_auth_refusals_total{reason="unknown_account"}`:                 1,
		`shortfleet_app_auth_refusals_total{reason="csrf"}`:                            1,
		`shortfleet_app_auth_refusals_total{reason="cross_origin"}`:                    1,
		`shortfleet_app_auth_refusals_total{reason="bad_api_key"}`:                     1,
		`shortfleet_app_auth_refusals_total{reason="no_api_key"}`:                      1,
		`shortfleet_app_auth_refusals_total{reason="suspended"}`:                       0,
		`shortfleet_app_rate_limited_total{limiter="signup_addr"}`:                     1,
		`shortfleet_app_rate_limited_total{limiter="login_addr"}`:                      0,
		`shortfleet_app_db_errors_total{class="connection"}`:                           0,
		`shortfleet_app_db_pool_acquired_conns`:                                        0,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	for _, series := range []string{`shortfleet_app_db_pool_max_conns`, `shortfleet_app_db_pool_total_conns`, `shortfleet_app_db_pool_acquires_total`} {
		if m[series] <= 0 {
			t.Errorf("%s = %v, want above 0", series, m[series])
		}
	}
	for _, name := range []string{`shortfleet_app_db_pool_idle_conns`, `shortfleet_app_db_pool_empty_acquires_total`, `shortfleet_app_db_pool_acquire_wait_seconds_total`} {
		if _, ok := m[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	for series := range m {
		if strings.Contains(series, "abcdefg") || strings.Contains(series, "page-xyz") {
			t.Errorf("a raw path became a label: %s", series)
		}
	}
	if t.Failed() {
		t.Logf("metrics: %v", m)
	}
}
