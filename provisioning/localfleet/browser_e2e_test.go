package localfleet_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"shortfleet/provisioning/bintest"
)

// TestBrowserDashboard drives headless Chromium through what a user does:
// sign up, create a link, follow it through a proxy, and, after the stats
// run, see the click counted and the chart drawn on the link's page. The
// screenshot is kept in artifacts/dashboard.png. Logged out, the link's
// page asks to log in and, once logged in, shows again; made an admin
// with `make admin` (fleet admin), the account sees the fleet page. All of
// it over HTTPS through the balancer, the browser trusting the fleet's CA,
// with the app's Secure, __Host- cookies (no -insecure-cookies).
func TestBrowserDashboard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := startFleet(t, 2)
	landing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>Landing</title><h1 id=landed>You have landed</h1>")
	}))
	defer landing.Close()
	// The primary refuses links to loopback hosts, where this fleet runs
	// (target.Policy). The landing page stands for a site elsewhere, so
	// the link names it landing.example, which Chromium alone resolves
	// to the test server.
	landingURL := strings.Replace(landing.URL, "127.0.0.1", "landing.example", 1)

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, bintest.ChromiumOptions(t, 1280, 1600,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("host-resolver-rules", "MAP landing.example 127.0.0.1"),
		// Trust the fleet's CA, which the balancer sends in its chain, as
		// a developer who imported .fleet/tls/ca.pem does.
		chromedp.Flag("ignore-certificate-errors-spki-list", f.CA().SPKIHash()))...)
	defer cancelAlloc()
	bctx, cancelB := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancelB()
	base := f.PrimaryURL()

	// Typed in plain HTTP, the app's address lands on HTTPS.
	plain := strings.Replace(strings.Replace(base, "https://", "http://", 1), ":8443", ":8080", 1)
	if err := chromedp.Do(bctx, chromedp.Navigate(plain+"/signup"), chromedp.WaitVisible(`input[name=email]`)); err != nil {
		t.Fatalf("%s/signup: %v", plain, err)
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != base+"/signup" {
		t.Fatalf("%s/signup landed on %s, want %s/signup: %v", plain, loc, base, err)
	}
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/signup"),
		chromedp.WaitVisible(`input[name=email]`),
		chromedp.SendKeys(`input[name=email]`, "browser@example.com"),
		chromedp.SendKeys(`input[name=password]`, "a long enough password"),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`input[name=target]`),
		chromedp.SendKeys(`input[name=target]`, landingURL+"/welcome"),
		chromedp.Submit(`input[name=target]`),
		chromedp.WaitVisible(`.flash`),
	); err != nil {
		t.Fatalf("sign up and create: %v", err)
	}
	flash, err := chromedp.Run(bctx, chromedp.Text(`.flash`))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(https://\S+/([0-9A-Za-z]{7}))`).FindStringSubmatch(flash)
	if m == nil {
		t.Fatalf("no short link in %q", flash)
	}
	shortURL, code := m[1], m[2]
	if err := f.WaitReplicas(ctx); err != nil { // not needed (read-your-writes); keeps the test about the browser
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(shortURL), chromedp.WaitVisible(`#landed`)); err != nil {
		t.Fatalf("following %s: %v", shortURL, err)
	}
	if landed, err := chromedp.Run(bctx, chromedp.Text(`#landed`)); err != nil || landed != "You have landed" {
		t.Fatalf("following %s landed on %q, %v", shortURL, landed, err)
	}

	// Seal the proxies' logs, then one stats run.
	for _, p := range f.Proxies {
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx, "redirect", "admin"); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := f.MapreduceOnce(ctx); err != nil || !strings.Contains(out, "clicks=1 ") {
		t.Fatalf("mapreduce -once: %v\n%s", err, out)
	}

	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/links/"+code+"?range=24h"), chromedp.WaitVisible(`#chart`)); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	clicks, err := chromedp.Run(bctx, chromedp.Text(`#clicks`))
	if err != nil {
		t.Fatal(err)
	}
	bars, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('#chart rect.human, #chart rect.bot').length`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "artifacts")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "dashboard.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(clicks) != "1" || bars != 1 {
		t.Fatalf("dashboard shows %q clicks and %d bars, want 1 and 1 (screenshot in artifacts/dashboard.png)", clicks, bars)
	}

	// A deep link while logged out: logging in lands on the link's page,
	// not on the list.
	deep := base + "/links/" + code + "?range=24h"
	if err := chromedp.Do(bctx,
		chromedp.Click(`form[action="/logout"] button`),
		chromedp.WaitVisible(`a[href="/signup"]`),
		chromedp.Navigate(deep),
		chromedp.WaitVisible(`input[name=password]`),
		chromedp.SendKeys(`input[name=email]`, "browser@example.com"),
		chromedp.SendKeys(`input[name=password]`, "a long enough password"),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`nav a[href="/keys"]`), // logged in, whichever page
	); err != nil {
		t.Fatalf("log in from a deep link: %v", err)
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != deep {
		t.Fatalf("logging in from %s landed on %s, %v", deep, loc, err)
	}
	if err := chromedp.Do(bctx, chromedp.WaitVisible(`#chart`)); err != nil {
		t.Fatalf("the link's page after log-in: %v", err)
	}

	// The fleet page, once the account is an admin: both proxies ready,
	// and the run just made.
	if code, out := fleetAdmin(t, f.StateDir(), "browser@example.com"); code != 0 {
		t.Fatalf("fleet admin: exit %d\n%s", code, out)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/fleet"), chromedp.WaitVisible(`table`)); err != nil {
		t.Fatalf("fleet page: %v", err)
	}
	fleet, err := chromedp.Run(bctx, chromedp.Text(`main`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(fleet, "ready") != 2 || !regexp.MustCompile(`\d+ run\s.*\bok\b`).MatchString(fleet) {
		t.Fatalf("fleet page:\n%s", fleet)
	}
	// Logged in as the admin for the first two; the last signs up an
	// account of its own and leaves the browser logged out.
	browseProtected(t, bctx, base, landingURL)
	browseAdmin(t, bctx, f, base, landingURL)
	browseAccounts(t, bctx, f, base)
}
