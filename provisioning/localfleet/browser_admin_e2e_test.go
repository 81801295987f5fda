package localfleet_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"shortfleet/provisioning/localfleet"
)

// browseAdmin is the admin's path through the admin page (issue 21), in
// the browser of TestBrowserDashboard, whose account is an admin by now:
// find an account by part of its e-mail and suspend it (its link answers
// 410 on every proxy), unsuspend it (302 again), take one of its links
// down with a reason, re-apply the blocklist and read its report. Then the
// owner, in a browser context of their own, reads the reason on the
// link's page. The page with the report is kept in artifacts/admin.png.
func browseAdmin(t *testing.T, bctx context.Context, f *localfleet.Fleet, base, landingURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, links := signupWithLinks(t, base, "owner@example.com", 1, landingURL+"/owned/%d")
	own := links[0]
	// A link whose target the policy refuses now: one made before, which
	// the API would refuse today, is written straight into the database.
	// This fleet runs on loopback, so a link to it would loop.
	var oldID int64
	if err := queryPrimary(f, []any{&oldID}, `INSERT INTO links (user_id, target)
		SELECT id, 'http://127.0.0.1/made-before' FROM users WHERE email = 'owner@example.com' RETURNING id`); err != nil {
		t.Fatal(err)
	}
	old, err := fleetCodec(t, f).Encode(oldID)
	if err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 5 * time.Second}
	everyProxy := func(code string, want int) {
		t.Helper()
		for _, p := range f.RedirectURLs() {
			waitUntil(t, ctx, func() bool {
				resp, err := noFollow.Get(p + "/" + code)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode == want
			})
		}
	}
	everyProxy(own.Code, 302)

	// do runs a step of the path, at most a minute, and on failure shows
	// the page it stopped on.
	do := func(c context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(c, time.Minute)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			dctx, cancel := context.WithTimeout(c, 10*time.Second)
			defer cancel()
			loc, _ := chromedp.Run(dctx, chromedp.Location())
			page, _ := chromedp.Run(dctx, chromedp.Text(`body`))
			t.Fatalf("%s: %v; on %s:\n%s", what, err, loc, page)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	do(bctx, "search the account",
		chromedp.Navigate(base+"/admin"),
		// The search box; each account's form carries the search too, hidden.
		chromedp.WaitVisible(`#search input[name=q]`),
		chromedp.SendKeys(`#search input[name=q]`, "OWNER@"),
		chromedp.Submit(`#search input[name=q]`),
		// The answer's search box holds the search as its value attribute
		// (typing sets only the property), so this waits for the new page.
		chromedp.WaitVisible(`#search input[name=q][value="OWNER@"]`),
		chromedp.WaitVisible(`#users form[action$="/suspend"] button`),
	)
	if users := text(`#users tbody`); !strings.Contains(users, "owner@example.com") || strings.Contains(users, "browser@example.com") {
		t.Fatalf("searching OWNER@ lists:\n%s", users)
	}
	do(bctx, "suspend",
		chromedp.Click(`#users form[action$="/suspend"] button`),
		chromedp.WaitVisible(`#users form[action$="/unsuspend"] button`),
	)
	if users := text(`#users tbody`); !strings.Contains(users, "suspended") {
		t.Fatalf("after suspending:\n%s", users)
	}
	everyProxy(own.Code, 410)
	do(bctx, "unsuspend",
		chromedp.Click(`#users form[action$="/unsuspend"] button`),
		chromedp.WaitVisible(`#users form[action$="/suspend"] button`),
	)
	everyProxy(own.Code, 302)

	const reason = "Reported as phishing by CERT, case 2026-118"
	do(bctx, "take down",
		chromedp.SendKeys(`input[name=code]`, own.ShortURL),
		chromedp.SendKeys(`input[name=reason]`, reason),
		chromedp.Submit(`input[name=reason]`),
		chromedp.WaitVisible(`#takedowns form[action$="/restore"]`),
	)
	if down := text(`#takedowns tbody`); !strings.Contains(down, own.Code) || !strings.Contains(down, reason) {
		t.Fatalf("links taken down:\n%s", down)
	}
	everyProxy(own.Code, 410)

	do(bctx, "re-apply the blocklist",
		chromedp.Click(`form[action="/admin/reapply"] button`),
		chromedp.WaitVisible(`#reapplied`),
	)
	report := text(`#reapplied`)
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "artifacts")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "admin.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report, "1 link taken down") || !strings.Contains(report, old) || !strings.Contains(report, "points at this machine") {
		t.Fatalf("the re-apply's report (screenshot in artifacts/admin.png):\n%s", report)
	}
	everyProxy(old, 410)

	// The owner, logged in elsewhere, reads why.
	octx, cancelO := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	defer cancelO()
	// The tab is made on the first run of its own context: one made under
	// do's timeout would close with it.
	if err := chromedp.Do(octx); err != nil {
		t.Fatal(err)
	}
	do(octx, "the owner's link page",
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(`input[name=password]`),
		chromedp.SendKeys(`input[name=email]`, "owner@example.com"),
		chromedp.SendKeys(`input[name=password]`, "a long enough password"),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`nav a[href="/keys"]`),
		chromedp.Navigate(base+"/links/"+own.Code),
		chromedp.WaitVisible(`#takedown`),
	)
	if got, err := chromedp.Run(octx, chromedp.Text(`#takedown`)); err != nil || !strings.Contains(got, reason) {
		t.Fatalf("the owner reads %q, %v; want the reason %q", got, err, reason)
	}
}
