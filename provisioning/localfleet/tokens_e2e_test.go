package localfleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"shortfleet/logfmt/ship"
	"shortfleet/provisioning/localfleet"
)

// TestPrimaryHoldsReadTokenOnly: the fleet keeps a read token beside the
// admin token in its state folder; the primary app's environment holds the
// read token and not the admin token; with it the proxies answer /metrics
// and refuse every segment endpoint (403); and the primary's fleet page
// shows the proxy's request count, which it read with that token.
func TestPrimaryHoldsReadTokenOnly(t *testing.T) {
	t.Parallel() // functional, not timed: three at a time (make test -parallel 3), after the timed drills, to keep make test under 20 minutes
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := startFleetWith(t, localfleet.Config{Proxies: 1, NoBalancer: true})
	read, adminTok := f.Secrets.ReadToken, f.Secrets.AdminToken
	if read == "" || read == adminTok {
		t.Fatalf("read token %q beside admin token %q", read, adminTok)
	}
	// Kept in the state folder (<state>/proxy/proxy-01/logs is the log's).
	var kept localfleet.Secrets
	data, err := os.ReadFile(filepath.Join(f.ProxyLogDir(0), "..", "..", "..", "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &kept); err != nil || kept.ReadToken != read {
		t.Fatalf("secrets.json holds read token %q (%v), want the fleet's", kept.ReadToken, err)
	}

	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", f.PrimaryApp.Process().Pid()))
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.Split(string(environ), "\x00")
	hasRead := false
	for _, v := range vars {
		if strings.HasPrefix(v, "SHORTFLEET_ADMIN_TOKEN=") || strings.Contains(v, adminTok) {
			t.Fatalf("the primary app's environment holds the admin token (in %s)", strings.SplitN(v, "=", 2)[0])
		}
		hasRead = hasRead || v == "SHORTFLEET_READ_TOKEN="+read
	}
	if !hasRead {
		t.Fatalf("the primary app's environment lacks SHORTFLEET_READ_TOKEN")
	}

	admin := f.AdminURLs()[0]
	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := do("GET", "/metrics", read, ""); st != 200 || !strings.Contains(body, "\nshortfleet_proxy_ready ") {
		t.Fatalf("/metrics with the read token: %d\n%s", st, body)
	}
	for _, p := range []string{"GET /segments", "GET /segments?all=1", "GET /segments/20261122T000000.000000000Z.arrows", "POST /segments/ingested", "GET /debug/pprof/"} {
		method, path, _ := strings.Cut(p, " ")
		if st, body := do(method, path, read, `{"names":[]}`); st != 403 {
			t.Fatalf("%s with the read token: %d %s, want 403", p, st, body)
		}
	}
	if st, _ := do("GET", "/segments", adminTok, ""); st != 200 {
		t.Fatalf("/segments with the admin token: %d", st)
	}

	// Every scrape target answers /metrics with its token, and the app's
	// (read token) to no other.
	for _, tg := range f.ScrapeTargets() {
		tok := map[string]string{"admin": adminTok, "read": read}[tg.Token]
		m, err := ship.Client{BaseURL: "http://" + tg.Addr, Token: tok}.Metrics(ctx)
		prefix := tg.Job + "_" // shortfleet_proxy_, shortfleet_app_, ...
		found := false
		for series := range m {
			found = found || strings.HasPrefix(series, prefix)
		}
		if err != nil || !found {
			t.Fatalf("%s %s (%s): %v, no %s series in %d", tg.Job, tg.Host, tg.Addr, err, prefix, len(m))
		}
		if tg.Job == "shortfleet_app" {
			if _, err := (ship.Client{BaseURL: "http://" + tg.Addr, Token: adminTok}).Metrics(ctx); err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("the app's /metrics with the admin token: %v, want 401", err)
			}
		}
	}

	// Requests to the proxy, then the fleet page as an admin shows them.
	const sent = 5
	for i := range sent {
		resp, err := http.Get(fmt.Sprintf("%s/no-such-link-%d", f.RedirectURLs()[0], i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	base := f.PrimaryURL()
	const email, password = "fleet@example.com", "a long enough password"
	if st := api(t, "POST", base+"/api/signup", "", map[string]string{"email": email, "password": password}, nil); st != 201 {
		t.Fatalf("signup: %d", st)
	}
	if out, err := f.Command(ctx, "primary", "grant-admin", email).CombinedOutput(); err != nil {
		t.Fatalf("grant-admin: %v\n%s", err, out)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := func(resp *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, login := page(browser.Get(base + "/login"))
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(login)
	if m == nil {
		t.Fatalf("no CSRF token on /login:\n%s", login)
	}
	if st, body := page(browser.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}, "csrf": {m[1]}})); st != http.StatusSeeOther {
		t.Fatalf("log in: %d\n%s", st, body)
	}
	st, fleet := page(browser.Get(base + "/fleet"))
	row := regexp.MustCompile(`(?s)<td class="mono">` + regexp.QuoteMeta(admin) + `</td>.*?</tr>`).FindString(fleet)
	if st != 200 || !strings.Contains(row, "ready") || !strings.HasSuffix(row, fmt.Sprintf(`<td class="num">%d</td></tr>`, sent)) {
		t.Fatalf("fleet page (%d): the proxy's row is %q, want it ready with %d requests", st, row, sent)
	}
}
