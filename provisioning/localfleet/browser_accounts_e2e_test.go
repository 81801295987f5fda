package localfleet_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"shortfleet/provisioning/localfleet"
)

// browseAccounts is a person's path through the account features of
// issue 21, in the browser of TestBrowserDashboard: log out and sign up a
// new account, tag two links (one on creation, one on its page), filter
// the list by the tag and open the tag's stats, make a read-only API key
// (which the API then refuses a creation), change the password, download
// the account's data, and delete the account: the browser is logged out
// and a proxy that had the link cached answers 410 for it. The account
// page is kept in artifacts/account.png. It leaves the browser logged out.
func browseAccounts(t *testing.T, bctx context.Context, f *localfleet.Fleet, base string) {
	t.Helper()
	const email, password, newPassword = "account@example.com", "a long enough password", "another long password"
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/links"),
		chromedp.Click(`form[action="/logout"] button`),
		chromedp.WaitVisible(`a[href="/signup"]`),
		chromedp.Navigate(base+"/signup"),
		chromedp.WaitVisible(`input[name=email]`),
		chromedp.SendKeys(`input[name=email]`, email),
		chromedp.SendKeys(`input[name=password]`, password),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`input[name=target]`),
		chromedp.SendKeys(`input[name=target]`, "https://example.com/campaign/one"),
		chromedp.SendKeys(`input[name=tags]`, "Campaign"),
		chromedp.Submit(`input[name=target]`),
		chromedp.WaitVisible(`.flash`),
	); err != nil {
		t.Fatalf("accounts: sign up and create a tagged link: %v", err)
	}
	codeRE := regexp.MustCompile(`/([0-9A-Za-z]{7})\b`)
	flash, err := chromedp.Run(bctx, chromedp.Text(`.flash`))
	if err != nil || codeRE.FindStringSubmatch(flash) == nil {
		t.Fatalf("accounts: no short link in %q: %v", flash, err)
	}
	first := codeRE.FindStringSubmatch(flash)[1]
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/links"),
		chromedp.WaitVisible(`input[name=target]`),
		chromedp.SendKeys(`input[name=target]`, "https://example.com/campaign/two"),
		chromedp.Submit(`input[name=target]`),
		chromedp.WaitVisible(`.flash`),
	); err != nil {
		t.Fatalf("accounts: create a second link: %v", err)
	}
	if flash, err = chromedp.Run(bctx, chromedp.Text(`.flash`)); err != nil || codeRE.FindStringSubmatch(flash) == nil {
		t.Fatalf("accounts: no short link in %q: %v", flash, err)
	}
	second := codeRE.FindStringSubmatch(flash)[1]
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/links/"+second),
		chromedp.WaitVisible(`#tagform input[name=tags]`),
		chromedp.SendKeys(`#tagform input[name=tags]`, "campaign, second"),
		chromedp.Submit(`#tagform input[name=tags]`),
		chromedp.WaitVisible(`#tags a[href="/tags/campaign"]`),
		// Filter the list by the tag, then open the tag's stats.
		chromedp.Navigate(base+"/links"),
		chromedp.WaitVisible(`select[name=tag]`),
		chromedp.SetValue(`select[name=tag]`, "campaign"),
		chromedp.Submit(`select[name=tag]`),
		chromedp.WaitVisible(`#tagfilter`),
	); err != nil {
		t.Fatalf("accounts: tag the second link and filter by the tag: %v", err)
	}
	listed, err := chromedp.Run(bctx, chromedp.Text(`tbody`))
	if err != nil || !strings.Contains(listed, first) || !strings.Contains(listed, second) || strings.Count(listed, "\ncampaign") != 2 {
		t.Fatalf("accounts: the list by tag shows %q, %v", listed, err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(`#tagfilter a[href="/tags/campaign"]`), chromedp.WaitVisible(`#chart`)); err != nil {
		t.Fatalf("accounts: the tag's stats: %v", err)
	}
	if text, err := chromedp.Run(bctx, chromedp.Text(`main`)); err != nil || !strings.Contains(text, "2 links carry this tag") {
		t.Fatalf("accounts: the tag page says %q, %v", text, err)
	}

	// A read-only key: listed as such, and refused a creation by the API.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/keys"),
		chromedp.WaitVisible(`input[name=name]`),
		chromedp.SendKeys(`input[name=name]`, "dashboard reader"),
		chromedp.SetValue(`select[name=scope]`, "read"),
		chromedp.Submit(`input[name=name]`),
		chromedp.WaitVisible(`#newkey`),
	); err != nil {
		t.Fatalf("accounts: make a read-only key: %v", err)
	}
	key, err := chromedp.Run(bctx, chromedp.Text(`#newkey`))
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := chromedp.Run(bctx, chromedp.Text(`tbody`)); err != nil || !strings.Contains(keys, "read-only") {
		t.Fatalf("accounts: the keys page lists %q, %v", keys, err)
	}
	if code := api(t, "POST", base+"/api/links", key, map[string]any{"target": "https://example.com/nope"}, nil); code != http.StatusForbidden {
		t.Fatalf("accounts: a creation with the read-only key: %d, want 403", code)
	}
	if code := api(t, "GET", base+"/api/links?tag=campaign", key, nil, nil); code != http.StatusOK {
		t.Fatalf("accounts: a list with the read-only key: %d, want 200", code)
	}

	// Change the password; the page stays logged in.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/account"),
		chromedp.WaitVisible(`#passwordform`),
		chromedp.SendKeys(`#passwordform input[name=current_password]`, password),
		chromedp.SendKeys(`#passwordform input[name=new_password]`, newPassword),
		chromedp.Submit(`#passwordform input[name=new_password]`),
		chromedp.WaitVisible(`.flash`),
	); err != nil {
		t.Fatalf("accounts: change the password: %v", err)
	}
	if flash, err := chromedp.Run(bctx, chromedp.Text(`.flash`)); err != nil || !strings.Contains(flash, "Password changed") {
		t.Fatalf("accounts: after the change the page says %q, %v", flash, err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "artifacts")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "account.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}

	// The account's data, as the page's download link fetches it.
	href, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('#export').getAttribute('href')`))
	if err != nil || href != "/account/export.json" {
		t.Fatalf("accounts: the download link is %q, %v", href, err)
	}
	js, err := chromedp.Run(bctx, chromedp.Evaluate[string](`fetch('/account/export.json').then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("accounts: download the data: %v", err)
	}
	var data struct {
		User  struct{ Email string }
		Links []struct {
			Code string
			Tags []string
		}
		Keys []struct{ Name, Scope string } `json:"api_keys"`
	}
	if err := json.Unmarshal([]byte(js), &data); err != nil || data.User.Email != email || len(data.Links) != 2 || len(data.Keys) != 2 ||
		data.Links[1].Code != second || strings.Join(data.Links[1].Tags, ",") != "campaign,second" || strings.Contains(js, key) {
		t.Fatalf("accounts: the data downloaded: %v\n%s", err, js)
	}

	// Follow the first link through a proxy, which caches it, then delete
	// the account: the browser is logged out, the proxy answers 410.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	proxyStatus := func() int {
		resp, err := noFollow.Get(f.RedirectURLs()[0] + "/" + first)
		if err != nil {
			t.Fatalf("accounts: through the proxy: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if err := f.WaitReplicas(bctx); err != nil {
		t.Fatal(err)
	}
	if st := proxyStatus(); st != http.StatusFound {
		t.Fatalf("accounts: the link through the proxy: %d, want 302", st)
	}
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/account"),
		chromedp.WaitVisible(`#deleteform`),
		chromedp.SendKeys(`#deleteform input[name=password]`, newPassword),
		chromedp.Click(`#deleteform input[name=confirm]`),
		chromedp.Click(`#deleteform button`),
		chromedp.WaitVisible(`a[href="/signup"]`),
	); err != nil {
		t.Fatalf("accounts: delete the account: %v", err)
	}
	if h1, err := chromedp.Run(bctx, chromedp.Text(`h1`)); err != nil || h1 != "Account deleted" {
		t.Fatalf("accounts: after the deletion the page says %q, %v", h1, err)
	}
	waitUntil(t, bctx, func() bool { return proxyStatus() == http.StatusGone })
}
