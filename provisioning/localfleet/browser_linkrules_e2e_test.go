package localfleet_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browseProtected is a person's path through issue 21's link options, in
// Chromium, logged in on the app at base: create a link with an expiry, a
// redirect rule and a password on the links form, open it through the
// balancer and a proxy, see the password form (screenshot in
// artifacts/protected.png), type a wrong password and be refused, type
// the right one and land on the rule's target (headless Chromium on Linux
// is a desktop, which the rule names). Then a second link, with a click
// cap and query forwarding: its page says both, and opened with a query it
// lands on the target with that query appended.
func browseProtected(t *testing.T, bctx context.Context, base, landingURL string) {
	t.Helper()
	expires := time.Now().UTC().Add(7 * 24 * time.Hour).Format("2006-01-02T15:04")
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/links"),
		chromedp.WaitVisible(`input[name=target]`),
		chromedp.Click(`details.options summary`),
		chromedp.SendKeys(`input[name=target]`, landingURL+"/protected"),
		chromedp.SetValue(`input[name=expires_at]`, expires),
		chromedp.SendKeys(`input[name=password]`, "correct horse battery"),
		chromedp.SendKeys(`textarea[name=rules]`, "device desktop "+landingURL+"/desktop"),
		chromedp.Submit(`input[name=target]`),
		chromedp.WaitVisible(`.flash`),
	); err != nil {
		t.Fatalf("create a protected link: %v", err)
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
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/links/"+code), chromedp.WaitVisible(`ol.rules`)); err != nil {
		t.Fatalf("link page: %v", err)
	}
	page, err := chromedp.Run(bctx, chromedp.Text(`main`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "visitors must enter a password") || !strings.Contains(page, strings.Replace(expires, "T", " ", 1)) {
		t.Fatalf("link page:\n%s", page)
	}

	if err := chromedp.Do(bctx, chromedp.Navigate(shortURL+"?from=browser"), chromedp.WaitVisible(`input[name=password]`)); err != nil {
		t.Fatalf("open %s: %v", shortURL, err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "artifacts")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "protected.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(`input[name=password]`, "wrong guess here"),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`#msg`),
	); err != nil {
		t.Fatalf("wrong password: %v", err)
	}
	if msg, err := chromedp.Run(bctx, chromedp.Text(`#msg`)); err != nil || msg != "Wrong password." {
		t.Fatalf("after a wrong password: %q, %v", msg, err)
	}
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(`input[name=password]`, "correct horse battery"),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`#landed`),
	); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != landingURL+"/desktop" {
		t.Fatalf("landed on %s, want %s/desktop (the rule's target): %v", loc, landingURL, err)
	}

	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/links"),
		chromedp.WaitVisible(`input[name=target]`),
		chromedp.Click(`details.options summary`),
		chromedp.SendKeys(`input[name=target]`, landingURL+"/forwarded?lang=en"),
		chromedp.SendKeys(`input[name=max_clicks]`, "3"),
		chromedp.Click(`input[name=forward_query]`),
		chromedp.Submit(`input[name=target]`),
		chromedp.WaitVisible(`.flash`),
	); err != nil {
		t.Fatalf("create a link with a cap and query forwarding: %v", err)
	}
	if flash, err = chromedp.Run(bctx, chromedp.Text(`.flash`)); err != nil {
		t.Fatal(err)
	}
	if m = regexp.MustCompile(`(https://\S+/([0-9A-Za-z]{7}))`).FindStringSubmatch(flash); m == nil {
		t.Fatalf("no short link in %q", flash)
	}
	shortURL, code = m[1], m[2]
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/links/"+code), chromedp.WaitVisible(`main`)); err != nil {
		t.Fatalf("link page: %v", err)
	}
	if page, err = chromedp.Run(bctx, chromedp.Text(`main`)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "stops after 3 clicks") || !strings.Contains(page, "forwarded to the target") {
		t.Fatalf("the capped, forwarding link's page:\n%s", page)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(shortURL+"?utm_source=browser"), chromedp.WaitVisible(`#landed`)); err != nil {
		t.Fatalf("open %s: %v", shortURL, err)
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != landingURL+"/forwarded?lang=en&utm_source=browser" {
		t.Fatalf("landed on %s, want the target with the short URL's query appended: %v", loc, err)
	}
}
