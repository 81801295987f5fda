package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"shortfleet/primary/internal/limit"
)

// makeAdmin signs up email and makes it an admin; it returns its key.
func (e *env) makeAdmin(email string) string {
	e.t.Helper()
	key := e.signup(email)
	if _, err := e.db.Exec(context.Background(), `UPDATE users SET is_admin = true WHERE email = $1`, email); err != nil {
		e.t.Fatal(err)
	}
	return key
}

func (e *env) userID(email string) int64 {
	e.t.Helper()
	var id int64
	if err := e.db.QueryRow(context.Background(), `SELECT id FROM users WHERE email = $1`, email).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// linkState is what the proxies read of a link, and how many change feed
// rows it has.
func (e *env) linkState(code string) (disabled bool, feed int) {
	e.t.Helper()
	id, _ := e.codec.DecodeString(code)
	if err := e.db.QueryRow(context.Background(), `SELECT disabled, (SELECT count(*) FROM link_changes WHERE link_id = $1)
		FROM links WHERE id = $1`, id).Scan(&disabled, &feed); err != nil {
		e.t.Fatal(err)
	}
	return disabled, feed
}

func (e *env) newLink(key, target string) string {
	e.t.Helper()
	a := e.json("POST", "/api/links", key, map[string]any{"target": target})
	if a.status != http.StatusCreated {
		e.t.Fatalf("create %s: %d %s", target, a.status, a.raw)
	}
	return a.body["code"].(string)
}

// TestAdminRefusesNonAdmins: every admin endpoint answers 403 to a key
// that is not an admin's, and changes nothing.
func TestAdminRefusesNonAdmins(t *testing.T) {
	e := setup(t, limit.Limits{})
	key := e.signup("plain@example.com")
	code := e.newLink(key, "https://example.com/x")
	id := e.userID("plain@example.com")
	for _, r := range e.api.adminRoutes() {
		path := strings.NewReplacer("{id}", fmt.Sprint(id), "{code}", code).Replace(r.Pattern)
		body := ""
		if strings.HasSuffix(path, "/takedown") {
			body = `{"reason":"spam"}`
		}
		if a := e.do(r.Method, path, key, "application/json", body); a.status != http.StatusForbidden || !strings.Contains(a.raw, "admins only") {
			t.Errorf("%s %s by a non-admin: %d %s", r.Method, path, a.status, a.raw)
		}
		if a := e.do(r.Method, path, "", "application/json", body); a.status != http.StatusUnauthorized {
			t.Errorf("%s %s without a key: %d %s", r.Method, path, a.status, a.raw)
		}
	}
	if disabled, feed := e.linkState(code); disabled || feed != 0 {
		t.Fatalf("after refused admin calls the link is disabled %v with %d feed rows", disabled, feed)
	}
}

func TestAdminListUsers(t *testing.T) {
	e := setup(t, limit.Limits{})
	admin := e.makeAdmin("root@ops.example")
	for i := range 5 {
		e.signup(fmt.Sprintf("user%d@Shop.example", i))
	}
	e.signup("other@elsewhere.example")
	a := e.do("GET", "/api/admin/users?q=shop.EX&per_page=2&page=2", admin, "", "")
	if a.status != 200 || a.body["total"] != 5.0 || a.body["page"] != 2.0 {
		t.Fatalf("search: %d %s", a.status, a.raw)
	}
	users := a.body["users"].([]any)
	if len(users) != 2 || users[0].(map[string]any)["email"] != "user2@shop.example" {
		t.Fatalf("page 2 of 2: %s", a.raw)
	}
	// % and _ are text, not patterns.
	if a := e.do("GET", "/api/admin/users?q=%25", admin, "", ""); a.status != 200 || a.body["total"] != 0.0 {
		t.Fatalf("q=%%: %d %s", a.status, a.raw)
	}
	for _, bad := range []string{"page=0", "page=x", "per_page=501", "per_page=-1", "q=" + strings.Repeat("a", 255)} {
		name, _, _ := strings.Cut(bad, "=")
		if a := e.do("GET", "/api/admin/users?"+bad, admin, "", ""); a.status != 400 || !strings.Contains(a.body["error"].(string), name) {
			t.Errorf("%s: %d %s, want 400 naming %s", bad, a.status, a.raw, name)
		}
	}
}

// TestSuspend: a suspended account's links are disabled (through the
// change feed) and its keys refused; unsuspending puts back exactly what
// was enabled, and a link taken down meanwhile stays down.
func TestSuspend(t *testing.T) {
	e := setup(t, limit.Limits{})
	admin := e.makeAdmin("root@ops.example")
	key := e.signup("bad@example.com")
	uid := e.userID("bad@example.com")
	on, off, down := e.newLink(key, "https://example.com/on"), e.newLink(key, "https://example.com/off"), e.newLink(key, "https://example.com/down")
	if a := e.json("PATCH", "/api/links/"+off, key, map[string]any{"disabled": true}); a.status != 200 {
		t.Fatalf("disable: %d %s", a.status, a.raw)
	}
	other := e.signup("good@example.com")
	kept := e.newLink(other, "https://example.com/kept")

	a := e.do("POST", fmt.Sprintf("/api/admin/users/%d/suspend", uid), admin, "", "")
	if a.status != 200 || a.body["links"] != 3.0 || a.body["user"].(map[string]any)["suspended_at"] == nil {
		t.Fatalf("suspend: %d %s", a.status, a.raw)
	}
	for _, c := range []string{on, off, down} {
		if disabled, _ := e.linkState(c); !disabled {
			t.Fatalf("link %s of a suspended account is enabled", c)
		}
	}
	if _, feed := e.linkState(on); feed != 1 {
		t.Fatalf("the enabled link has %d change feed rows after suspension, want 1: the proxies would not hear of it", feed)
	}
	if disabled, _ := e.linkState(kept); disabled {
		t.Fatal("another account's link was disabled")
	}
	if a := e.do("GET", "/api/links", key, "", ""); a.status != 403 || !strings.Contains(a.raw, "suspended") {
		t.Fatalf("a suspended account's key: %d %s", a.status, a.raw)
	}
	// Suspending twice changes nothing.
	if a := e.do("POST", fmt.Sprintf("/api/admin/users/%d/suspend", uid), admin, "", ""); a.status != 200 || a.body["links"] != 0.0 {
		t.Fatalf("suspend again: %d %s", a.status, a.raw)
	}
	if a := e.json("POST", "/api/admin/links/"+down+"/takedown", admin, map[string]string{"reason": "phishing"}); a.status != 200 {
		t.Fatalf("take down: %d %s", a.status, a.raw)
	}

	a = e.do("POST", fmt.Sprintf("/api/admin/users/%d/unsuspend", uid), admin, "", "")
	if a.status != 200 || a.body["links"] != 3.0 || a.body["user"].(map[string]any)["suspended_at"] != nil {
		t.Fatalf("unsuspend: %d %s", a.status, a.raw)
	}
	for c, want := range map[string]bool{on: false, off: true, down: true} {
		if disabled, _ := e.linkState(c); disabled != want {
			t.Errorf("after unsuspending, link %s disabled %v, want %v", c, disabled, want)
		}
	}
	if a := e.do("GET", "/api/links", key, "", ""); a.status != 200 {
		t.Fatalf("the key after unsuspending: %d %s", a.status, a.raw)
	}

	for path, want := range map[string]int{
		fmt.Sprintf("/api/admin/users/%d/suspend", e.userID("root@ops.example")): 400, // yourself
		"/api/admin/users/x/suspend":      400,
		"/api/admin/users/0/suspend":      400,
		"/api/admin/users/999999/suspend": 404,
	} {
		if a := e.do("POST", path, admin, "", ""); a.status != want {
			t.Errorf("POST %s: %d %s, want %d", path, a.status, a.raw, want)
		}
	}
}

// TestTakeDown: a link taken down is disabled with its reason, which its
// owner reads; the owner cannot enable it; restoring puts back what the
// owner had.
func TestTakeDown(t *testing.T) {
	e := setup(t, limit.Limits{})
	admin := e.makeAdmin("root@ops.example")
	key := e.signup("owner@example.com")
	code := e.newLink(key, "https://example.com/t")
	for _, bad := range []struct{ body, want string }{
		{`{"reason":""}`, "reason"},
		{`{"reason":"   "}`, "reason"},
		{`{"reason":"` + strings.Repeat("x", 501) + `"}`, "reason"},
		{`{"reason":"a\u0000b"}`, "reason"},
		{`{"why":"spam"}`, "why"},
		{`{}`, "reason"},
	} {
		a := e.do("POST", "/api/admin/links/"+code+"/takedown", admin, "application/json", bad.body)
		if a.status != 400 || !strings.Contains(a.body["error"].(string), bad.want) {
			t.Errorf("takedown %s: %d %s, want 400 naming %s", bad.body, a.status, a.raw, bad.want)
		}
	}
	if disabled, feed := e.linkState(code); disabled || feed != 0 {
		t.Fatalf("refused takedowns changed the link: disabled %v, %d feed rows", disabled, feed)
	}
	if a := e.json("POST", "/api/admin/links/nosuchalias/takedown", admin, map[string]string{"reason": "x"}); a.status != 404 {
		t.Fatalf("takedown of a missing link: %d %s", a.status, a.raw)
	}
	a := e.json("POST", "/api/admin/links/"+code+"/takedown", admin, map[string]string{"reason": "  Phishing: reported by CERT  "})
	if a.status != 200 || a.body["takedown_reason"] != "Phishing: reported by CERT" || a.body["owner"] != "owner@example.com" || a.body["disabled"] != true {
		t.Fatalf("takedown: %d %s", a.status, a.raw)
	}
	if disabled, feed := e.linkState(code); !disabled || feed != 1 {
		t.Fatalf("taken down: disabled %v with %d feed rows", disabled, feed)
	}
	if g := e.do("GET", "/api/links/"+code, key, "", ""); g.body["takedown_reason"] != "Phishing: reported by CERT" || g.body["disabled"] != true {
		t.Fatalf("the owner reads %s", g.raw)
	}
	if p := e.json("PATCH", "/api/links/"+code, key, map[string]any{"disabled": false}); p.status != 409 || !strings.Contains(p.raw, "taken down") {
		t.Fatalf("the owner enabling it: %d %s", p.status, p.raw)
	}
	// The owner disables it meanwhile: restored, it stays disabled.
	if p := e.json("PATCH", "/api/links/"+code, key, map[string]any{"disabled": true}); p.status != 200 {
		t.Fatalf("the owner disabling it: %d %s", p.status, p.raw)
	}
	a = e.do("POST", "/api/admin/links/"+code+"/restore", admin, "", "")
	if a.status != 200 || a.body["takedown_reason"] != nil || a.body["disabled"] != true {
		t.Fatalf("restore: %d %s", a.status, a.raw)
	}
	if a := e.do("POST", "/api/admin/links/"+code+"/restore", admin, "", ""); a.status != 409 {
		t.Fatalf("restore again: %d %s", a.status, a.raw)
	}
	if p := e.json("PATCH", "/api/links/"+code, key, map[string]any{"disabled": false}); p.status != 200 || p.body["disabled"] != false {
		t.Fatalf("the owner enabling it after the restore: %d %s", p.status, p.raw)
	}
	// Taken down and restored while enabled: enabled again.
	e.json("POST", "/api/admin/links/"+code+"/takedown", admin, map[string]string{"reason": "x"})
	if a := e.do("POST", "/api/admin/links/"+code+"/restore", admin, "", ""); a.body["disabled"] != false {
		t.Fatalf("restore of an enabled link: %s", a.raw)
	}
}

// TestReapplyBlocklist: links made before their domain was blocked are
// taken down with the reason, and reported; a second run finds none.
func TestReapplyBlocklist(t *testing.T) {
	e := setup(t, limit.Limits{})
	admin := e.makeAdmin("root@ops.example")
	key := e.signup("owner@example.com")
	bad1 := e.newLink(key, "https://bad.example/a")
	bad2 := e.newLink(key, "https://cdn.bad.example/b")
	good := e.newLink(key, "https://good.example/")
	// Blocked since: the policy the server runs with now refuses them.
	e.api.cfg.Policy.Blocked["bad.example"] = true

	a := e.do("POST", "/api/admin/blocklist/reapply", admin, "", "")
	if a.status != 200 || a.body["disabled"] != 2.0 {
		t.Fatalf("reapply: %d %s", a.status, a.raw)
	}
	got := map[string]string{}
	for _, l := range a.body["links"].([]any) {
		m := l.(map[string]any)
		got[m["code"].(string)] = m["takedown_reason"].(string)
	}
	for _, c := range []string{bad1, bad2} {
		if !strings.Contains(got[c], "bad.example") {
			t.Errorf("link %s: reason %q in %s", c, got[c], a.raw)
		}
		if disabled, _ := e.linkState(c); !disabled {
			t.Errorf("link %s is still enabled", c)
		}
	}
	if disabled, _ := e.linkState(good); disabled {
		t.Error("the allowed link was disabled")
	}
	if g := e.do("GET", "/api/links/"+bad1, key, "", ""); !strings.Contains(g.raw, "links to bad.example are not allowed") {
		t.Fatalf("the owner reads %s", g.raw)
	}
	if a := e.do("POST", "/api/admin/blocklist/reapply", admin, "", ""); a.status != 200 || a.body["disabled"] != 0.0 {
		t.Fatalf("second reapply: %d %s", a.status, a.raw)
	}
}
