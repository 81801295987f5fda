package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestLinkOptionsForm: the links form creates a link with an expiry, a
// click cap, query forwarding, rules and a password; the link page shows
// them (never the password) and edits them; bad values are refused on the
// form, naming the field, with what was typed kept.
func TestLinkOptionsForm(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("opts@example.com")
	exp := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Minute)
	form := url.Values{"target": {"https://example.com/o"}, "redirect_type": {"302"}, "expires_at": {exp.Format(formTime)},
		"max_clicks": {"50"}, "forward_query": {"on"}, "password": {"a link password"},
		"rules": {"device ios https://apps.example/ios\ncountry fr https://example.fr/"}}
	resp, body := b.post("/links", "/links", form)
	m := codeRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusCreated || m == nil {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	code := m[1]
	_, page := b.get("/links/" + code)
	for _, want := range []string{exp.Format("2006-01-02 15:04:05") + " UTC", "stops after 50 clicks", "forwarded to the target",
		"visitors must enter a password", "country FR", "https://example.fr/", `value="` + exp.Format(formTime) + `"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("link page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "a link password") || strings.Contains(page, "argon2") {
		t.Fatal("the link page shows the password or its hash")
	}

	for _, tc := range []struct {
		name, field, value, msg string
	}{
		{"past expiry", "expires_at", "2001-01-01T00:00", "expires_at"},
		{"not a time", "expires_at", "tomorrow", "expires_at"},
		{"cap 0", "max_clicks", "0", "max_clicks 0"},
		{"cap not a number", "max_clicks", "ten", "max_clicks"},
		{"unknown country", "rules", "country XX https://example.com/", "country &#34;XX&#34;"},
		{"rule shape", "rules", "country", "rules, line 1"},
		{"short password", "password", "short", "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{"target": {"https://example.com/kept"}, "redirect_type": {"302"}, tc.field: {tc.value}}
			resp, body := b.post("/links", "/links", f)
			if resp.StatusCode != 400 || !strings.Contains(body, tc.msg) || !strings.Contains(body, `value="https://example.com/kept"`) {
				t.Fatalf("create: %d, want 400 naming %q with the target kept:\n%s", resp.StatusCode, tc.msg, body)
			}
			f.Set("action", "edit")
			resp, body = b.post("/links/"+code, "/links/"+code, f)
			if resp.StatusCode != 400 || !strings.Contains(body, tc.msg) || !strings.Contains(body, `value="https://example.com/kept"`) {
				t.Fatalf("edit: %d, want 400 naming %q with the typed target kept:\n%s", resp.StatusCode, tc.msg, body)
			}
		})
	}
	if n := e.count(`SELECT count(*) FROM links`); n != 1 {
		t.Fatalf("%d links after refusals, want 1", n)
	}

	// Edit: clear the expiry and cap, drop the rules, keep the password
	// (left blank), then remove it.
	resp, _ = b.post("/links/"+code, "/links/"+code, url.Values{"action": {"edit"}, "target": {"https://example.com/o2"}, "redirect_type": {"302"}})
	if resp.StatusCode != 303 {
		t.Fatalf("edit: %d", resp.StatusCode)
	}
	if n := e.count(`SELECT count(*) FROM links WHERE expires_at IS NULL AND max_clicks IS NULL AND rules IS NULL AND NOT forward_query
		AND password_hash IS NOT NULL`); n != 1 {
		t.Fatal("edit did not set the options as the form held them")
	}
	b.post("/links/"+code, "/links/"+code, url.Values{"action": {"edit"}, "target": {"https://example.com/o2"}, "redirect_type": {"302"}, "remove_password": {"on"}})
	if n := e.count(`SELECT count(*) FROM links WHERE password_hash IS NULL`); n != 1 {
		t.Fatal("password not removed")
	}

	// Why it stopped.
	if _, err := e.st.DB().Exec(context.Background(), `UPDATE links SET disabled = true, stop_reason = 'max_clicks', max_clicks = 50`); err != nil {
		t.Fatal(err)
	}
	if _, page := b.get("/links/" + code); !strings.Contains(page, `id="stopped">Stopped: it reached its cap of 50 clicks.`) {
		t.Fatalf("stop reason not shown:\n%s", page)
	}
	if _, err := e.st.DB().Exec(context.Background(), `UPDATE links SET disabled = false, stop_reason = NULL, expires_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	if _, page := b.get("/links/" + code); !strings.Contains(page, `id="stopped">Expired at `) {
		t.Fatalf("expiry not shown:\n%s", page)
	}
}
