package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func (b *browser) login(email, password string) {
	b.e.t.Helper()
	if resp, body := b.post("/login", "/login", url.Values{"email": {email}, "password": {password}}); resp.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("log in: %d %s", resp.StatusCode, body)
	}
}

// loggedIn reports whether the browser's session still opens the links.
func (b *browser) loggedIn() bool {
	b.e.t.Helper()
	resp, _ := b.get("/links")
	return resp.StatusCode == http.StatusOK
}

// TestChangePasswordInTheBrowser: the account page changes the password
// given the current one: this browser stays logged in, another browser
// logged in to the account is logged out, the account's API key keeps
// working; a wrong current password and a short new one are refused on
// the form, saying which field, and change nothing; the form without
// its CSRF token is refused.
func TestChangePasswordInTheBrowser(t *testing.T) {
	e := setup(t)
	b, other := e.browser(), e.browser()
	b.signup("pw@example.com")
	other.login("pw@example.com", "a good long password")
	key := b.newKey("ci")
	for _, tc := range []struct {
		form   url.Values
		status int
		msg    string
	}{
		{url.Values{"current_password": {"not the password"}, "new_password": {"a new long password"}}, 403, "Current password is wrong."},
		{url.Values{"current_password": {"a good long password"}, "new_password": {"short"}}, 400, "new_password: password must be 10 to 256 characters"},
		{url.Values{"new_password": {"a new long password"}}, 400, "Current password is missing."},
	} {
		if resp, body := b.post("/account", "/account/password", tc.form); resp.StatusCode != tc.status || !strings.Contains(body, tc.msg) {
			t.Fatalf("%v: %d, want %d with %q:\n%s", tc.form, resp.StatusCode, tc.status, tc.msg, body)
		}
	}
	if resp, _ := b.post("", "/account/password", url.Values{"current_password": {"a good long password"}, "new_password": {"a new long password"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("without a CSRF token: %d", resp.StatusCode)
	}
	if !other.loggedIn() {
		t.Fatal("a refused change logged the other browser out")
	}
	resp, body := b.post("/account", "/account/password", url.Values{"current_password": {"a good long password"}, "new_password": {"a new long password"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "Password changed. Other sessions logged out: 1.") {
		t.Fatalf("change: %d\n%s", resp.StatusCode, body)
	}
	if !b.loggedIn() {
		t.Fatal("the browser that changed the password was logged out")
	}
	if other.loggedIn() {
		t.Fatal("the other browser is still logged in")
	}
	if code := e.apiCreate(key); code != http.StatusCreated {
		t.Fatalf("the API key after the change: %d", code)
	}
	if resp, _ := e.browser().post("/login", "/login", url.Values{"email": {"pw@example.com"}, "password": {"a good long password"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old password: %d", resp.StatusCode)
	}
	e.browser().login("pw@example.com", "a new long password")
}

// TestExportAndDeleteInTheBrowser: the account page's download holds
// the account's data and no secret; deleting asks for the password and
// the box ticked, refuses without either, then logs out, every session
// and key ends, the links answer as tombstones (disabled, nobody's), and
// the email signs up again.
func TestExportAndDeleteInTheBrowser(t *testing.T) {
	e := setup(t)
	b, other := e.browser(), e.browser()
	b.signup("del@example.com")
	other.login("del@example.com", "a good long password")
	key := b.newKey("ci")
	resp, body := b.post("/links", "/links", url.Values{"target": {"https://example.com/mine"}, "alias": {"mine-alias"}, "tags": {"t1"}, "redirect_type": {"302"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	code := codeRE.FindStringSubmatch(body)[1]
	if _, page := b.get("/account"); !strings.Contains(page, `href="/account/export.json"`) {
		t.Fatalf("the account page has no download:\n%s", page)
	}
	resp, js := b.get("/account/export.json")
	var x struct {
		User  struct{ Email string }
		Links []struct {
			Code    string
			Aliases []string
			Tags    []string
		}
		Keys []struct{ Name, Prefix, Scope string } `json:"api_keys"`
	}
	if err := json.Unmarshal([]byte(js), &x); err != nil || resp.StatusCode != 200 || x.User.Email != "del@example.com" || len(x.Links) != 1 ||
		x.Links[0].Code != code || x.Links[0].Aliases[0] != "mine-alias" || x.Links[0].Tags[0] != "t1" || len(x.Keys) != 2 ||
		strings.Contains(js, key) || strings.Contains(js, "argon2") {
		t.Fatalf("export: %d %v\n%s", resp.StatusCode, err, js)
	}

	for _, tc := range []struct {
		form   url.Values
		status int
		msg    string
	}{
		{url.Values{"password": {"a good long password"}}, 400, "Tick the box"},
		{url.Values{"confirm": {"yes"}}, 400, "Password is missing"},
		{url.Values{"password": {"not the password"}, "confirm": {"yes"}}, 403, "Password is wrong."},
	} {
		if resp, body := b.post("/account", "/account/delete", tc.form); resp.StatusCode != tc.status || !strings.Contains(body, tc.msg) {
			t.Fatalf("%v: %d, want %d with %q", tc.form, resp.StatusCode, tc.status, tc.msg)
		}
	}
	if resp, _ := b.post("", "/account/delete", url.Values{"password": {"a good long password"}, "confirm": {"yes"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("without a CSRF token: %d", resp.StatusCode)
	}
	if n := e.count(`SELECT count(*) FROM users WHERE email = 'del@example.com'`); n != 1 {
		t.Fatal("a refused deletion deleted")
	}
	resp, body = b.post("/account", "/account/delete", url.Values{"password": {"a good long password"}, "confirm": {"yes"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "Account deleted") || !strings.Contains(body, "1 links answer 410") || strings.Contains(body, `action="/logout"`) {
		t.Fatalf("delete: %d\n%s", resp.StatusCode, body)
	}
	if b.loggedIn() || other.loggedIn() {
		t.Fatal("a session outlived the account")
	}
	if c := e.apiCreate(key); c != http.StatusUnauthorized {
		t.Fatalf("the deleted account's key: %d", c)
	}
	id, _ := e.codec.DecodeString(code)
	if n := e.count(`SELECT count(*) FROM links WHERE id = $1 AND disabled AND user_id IS NULL`, id); n != 1 {
		t.Fatal("the link is not a tombstone")
	}
	again := e.browser()
	again.signup("del@example.com")
	if resp, _ := again.get("/links/" + code); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the new account sees the old link: %d", resp.StatusCode)
	}
}
