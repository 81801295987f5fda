package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// blocked is the blocklist of the policy adminSetup's server runs with:
// a test adds to it to block a domain after links to it were made.
type blocked map[string]bool

// adminSetup returns an admin's browser, logged in, and a plain user's
// with one link.
func adminSetup(t *testing.T) (e *env, admin, user *browser, code string) {
	e, admin, user, code, _ = adminSetupBlocked(t)
	return e, admin, user, code
}

func adminSetupBlocked(t *testing.T) (e *env, admin, user *browser, code string, block blocked) {
	block = blocked{}
	e = setup(t, func(c *Config) { c.Policy.Blocked = block })
	admin = e.browser()
	admin.signup("ops@example.com")
	if err := e.st.SetAdmin(context.Background(), "ops@example.com", true); err != nil {
		t.Fatal(err)
	}
	user = e.browser()
	user.signup("someone@example.com")
	code = user.create("https://example.com/page", "")
	return e, admin, user, code, block
}

func (e *env) uid(email string) int64 {
	e.t.Helper()
	var id int64
	if err := e.st.DB().QueryRow(context.Background(), `SELECT id FROM users WHERE email = $1`, email).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestAdminPageRefusesNonAdmins: every admin route answers 403 to a
// session that is not an admin's, and changes nothing; without a session
// it asks for a log-in.
func TestAdminPageRefusesNonAdmins(t *testing.T) {
	e, _, user, code := adminSetup(t)
	id := e.uid("someone@example.com")
	if resp, body := user.get("/admin"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Admins only") {
		t.Fatalf("GET /admin by a user: %d", resp.StatusCode)
	}
	for _, path := range []string{fmt.Sprintf("/admin/users/%d/suspend", id), fmt.Sprintf("/admin/users/%d/unsuspend", id),
		"/admin/takedown", "/admin/links/" + code + "/restore", "/admin/reapply"} {
		resp, _ := user.post("/links", path, url.Values{"code": {code}, "reason": {"spam"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s by a user: %d", path, resp.StatusCode)
		}
		if resp, _ := e.browser().post("/login", path, url.Values{}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %d", path, resp.StatusCode)
		}
	}
	if n := e.count(`SELECT count(*) FROM links WHERE disabled OR takedown_reason IS NOT NULL`); n != 0 {
		t.Fatalf("%d links changed by refused requests", n)
	}
	if n := e.count(`SELECT count(*) FROM users WHERE suspended_at IS NOT NULL`); n != 0 {
		t.Fatalf("%d accounts suspended by refused requests", n)
	}
}

// TestAdminSuspendInBrowser: an admin finds an account by part of its
// e-mail and suspends it; its session is refused, it cannot log in (a
// clear message), its link is disabled; unsuspended, all comes back.
func TestAdminSuspendInBrowser(t *testing.T) {
	e, admin, user, code := adminSetup(t)
	id := e.uid("someone@example.com")
	resp, body := admin.get("/admin?q=SOMEONE")
	if resp.StatusCode != 200 || !strings.Contains(body, "someone@example.com") || strings.Contains(body, "<td>ops@example.com") {
		t.Fatalf("search: %d %s", resp.StatusCode, body)
	}
	// Without the CSRF token: refused.
	if resp, _ := admin.post("", fmt.Sprintf("/admin/users/%d/suspend", id), url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("suspend without CSRF token: %d", resp.StatusCode)
	}
	if e.count(`SELECT count(*) FROM users WHERE suspended_at IS NOT NULL`) != 0 {
		t.Fatal("suspended without a CSRF token")
	}
	resp, _ = admin.post("/admin", fmt.Sprintf("/admin/users/%d/suspend", id), url.Values{"q": {"someone"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin?q=someone" {
		t.Fatalf("suspend: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := admin.get("/admin?q=someone"); !strings.Contains(body, "suspended 20") || !strings.Contains(body, "Unsuspend") {
		t.Fatalf("the page does not show the suspension: %s", body)
	}
	if e.count(`SELECT count(*) FROM links WHERE user_id = $1 AND disabled`, id) != 1 {
		t.Fatal("the suspended account's link is enabled")
	}
	if resp, body := user.get("/links"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "suspended") {
		t.Fatalf("the suspended session: %d", resp.StatusCode)
	}
	again := e.browser()
	resp, body = again.post("/login", "/login", url.Values{"email": {"someone@example.com"}, "password": {"a good long password"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This account is suspended") {
		t.Fatalf("log-in while suspended: %d %s", resp.StatusCode, body)
	}
	// The wrong password tells nothing of the suspension.
	resp, body = again.post("/login", "/login", url.Values{"email": {"someone@example.com"}, "password": {"not the password"}})
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "suspended") {
		t.Fatalf("wrong password while suspended: %d", resp.StatusCode)
	}
	// Admins cannot suspend themselves.
	if resp, _ := admin.post("/admin", fmt.Sprintf("/admin/users/%d/suspend", e.uid("ops@example.com")), url.Values{}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("suspend yourself: %d", resp.StatusCode)
	}

	if resp, _ := admin.post("/admin", fmt.Sprintf("/admin/users/%d/unsuspend", id), url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("unsuspend: %d", resp.StatusCode)
	}
	if resp, _ := user.get("/links/" + code); resp.StatusCode != http.StatusOK {
		t.Fatalf("the session after unsuspending: %d", resp.StatusCode)
	}
	if e.count(`SELECT count(*) FROM links WHERE user_id = $1 AND disabled`, id) != 0 {
		t.Fatal("the link stayed disabled after unsuspending")
	}
}

// TestAdminTakeDownInBrowser: an admin takes a link down with a reason;
// a bad form is refused and kept; the owner reads the reason and cannot
// re-enable it; the admin restores it. Re-applying the blocklist reports
// what it took down.
func TestAdminTakeDownInBrowser(t *testing.T) {
	e, admin, user, code, block := adminSetupBlocked(t)
	for _, bad := range []url.Values{
		{"code": {code}, "reason": {"  "}},
		{"code": {""}, "reason": {"spam"}},
		{"code": {code}, "reason": {strings.Repeat("x", 501)}},
	} {
		resp, body := admin.post("/admin", "/admin/takedown", bad)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `role="alert"`) ||
			!strings.Contains(body, `name="code" value="`+bad.Get("code")+`"`) {
			t.Errorf("takedown %v: %d, want 400 with the message and the form kept", bad, resp.StatusCode)
		}
	}
	if resp, body := admin.post("/admin", "/admin/takedown", url.Values{"code": {"nosuch"}, "reason": {"spam"}}); resp.StatusCode != 404 || !strings.Contains(body, "no link nosuch") {
		t.Fatalf("takedown of a missing link: %d", resp.StatusCode)
	}
	if e.count(`SELECT count(*) FROM links WHERE disabled`) != 0 {
		t.Fatal("a refused takedown disabled a link")
	}
	resp, body := admin.post("/admin", "/admin/takedown", url.Values{"code": {"https://sho.rt/" + code}, "reason": {"Phishing <script>alert(1)</script>"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "is taken down") || !strings.Contains(body, "Phishing &lt;script&gt;") {
		t.Fatalf("takedown: %d %s", resp.StatusCode, body)
	}
	_, body = user.get("/links/" + code)
	if !strings.Contains(body, `id="takedown"`) || !strings.Contains(body, "Phishing &lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("the owner's link page: %s", body)
	}
	if resp, body := user.post("/links/"+code, "/links/"+code, url.Values{"action": {"enable"}}); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "taken down") {
		t.Fatalf("the owner re-enabling it: %d", resp.StatusCode)
	}
	if _, body := user.get("/links"); !strings.Contains(body, "taken down") {
		t.Fatal("the owner's links page does not say taken down")
	}
	resp, body = admin.post("/admin", "/admin/links/"+code+"/restore", url.Values{})
	if resp.StatusCode != 200 || !strings.Contains(body, "is restored") {
		t.Fatalf("restore: %d", resp.StatusCode)
	}
	if e.count(`SELECT count(*) FROM links WHERE disabled`) != 0 {
		t.Fatal("the restored link is disabled")
	}

	// Blocked since it was made.
	bad := user.create("https://spam.example/offer", "")
	block["spam.example"] = true
	resp, body = admin.post("/admin", "/admin/reapply", url.Values{})
	if resp.StatusCode != 200 || !strings.Contains(body, "1 link taken down") || !strings.Contains(body, `<td class="mono">`+bad+`</td>`) ||
		!strings.Contains(body, "links to spam.example are not allowed here") {
		t.Fatalf("re-apply: %d %s", resp.StatusCode, body)
	}
	if e.count(`SELECT count(*) FROM links WHERE disabled`) != 1 {
		t.Fatal("re-apply did not disable exactly the blocked link")
	}
}

// TestAdminFormsRefuseNoCSRFToken: every admin form posted by an admin
// without its CSRF token, or with a forged one, is refused (403) and
// changes nothing.
func TestAdminFormsRefuseNoCSRFToken(t *testing.T) {
	e, admin, _, code := adminSetup(t)
	id := e.uid("someone@example.com")
	if _, err := e.st.DB().Exec(context.Background(), `UPDATE links SET takedown_reason = 'x', taken_down_at = now(),
		disabled_before = disabled, disabled = true`); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fmt.Sprintf("/admin/users/%d/suspend", id), fmt.Sprintf("/admin/users/%d/unsuspend", id),
		"/admin/takedown", "/admin/links/" + code + "/restore", "/admin/reapply"} {
		for _, token := range []string{"", "forged-token-0123456789abcdef0123456789"} {
			resp, _ := admin.post("", path, url.Values{"csrf": {token}, "code": {code}, "reason": {"changed"}})
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with CSRF token %q: %d", path, token, resp.StatusCode)
			}
		}
	}
	if n := e.count(`SELECT count(*) FROM links WHERE takedown_reason = 'x' AND disabled`); n != 1 {
		t.Fatalf("%d links still taken down with the first reason, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM users WHERE suspended_at IS NOT NULL`); n != 0 {
		t.Fatalf("%d accounts suspended", n)
	}
}
