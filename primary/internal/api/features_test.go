package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"shortfleet/primary/internal/limit"
)

// TestLinkFeatures: a link's expiry, click cap, query forwarding, rules
// and password go in at creation and by PATCH, come back in the link's
// JSON (the password only as password_protected), and bad values are
// refused with a 400 naming the field, creating or changing nothing.
func TestLinkFeatures(t *testing.T) {
	e := setup(t, limit.Limits{})
	key := e.signup("f@example.com")
	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	a := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/f", "expires_at": exp, "max_clicks": 100,
		"forward_query": true, "password": "open sesame 123",
		"rules": []map[string]string{{"kind": "device", "value": "IOS", "target": "https://apps.apple.com/x"},
			{"kind": "language", "value": "fr", "target": "https://example.com/fr"},
			{"kind": "country", "value": "jp", "target": "https://example.jp/"}}})
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	code := a.body["code"].(string)
	id, _ := e.codec.DecodeString(code)
	for _, got := range []answer{a, e.do("GET", "/api/links/"+code, key, "", "")} {
		if got.body["expires_at"] != exp.Format(time.RFC3339) || got.body["max_clicks"] != 100.0 || got.body["forward_query"] != true ||
			got.body["password_protected"] != true || got.body["stopped_reason"] != nil || strings.Contains(got.raw, "sesame") ||
			!strings.Contains(got.raw, `{"kind":"device","value":"ios","target":"https://apps.apple.com/x"}`) ||
			!strings.Contains(got.raw, `{"kind":"country","value":"JP","target":"https://example.jp/"}`) {
			t.Fatalf("link shows %s", got.raw)
		}
	}
	var hash string
	if err := e.db.QueryRow(context.Background(), `SELECT password_hash FROM links WHERE id = $1`, id).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if ok, err := argon2id.ComparePasswordAndHash("open sesame 123", hash); !ok || err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$m=9216,t=4,p=1$") {
		t.Fatalf("stored hash %q (match %v, %v): want argon2id at the link parameters", hash, ok, err)
	}

	for _, tc := range []struct {
		name string
		body map[string]any
		msg  string
	}{
		{"expiry in the past", map[string]any{"expires_at": time.Now().Add(-time.Minute)}, "expires_at"},
		{"max_clicks 0", map[string]any{"max_clicks": 0}, "max_clicks 0"},
		{"max_clicks negative", map[string]any{"max_clicks": -5}, "max_clicks -5"},
		{"unknown country", map[string]any{"rules": []map[string]string{{"kind": "country", "value": "XX", "target": "https://example.com/"}}}, "rules[0]: country \"XX\""},
		{"unknown device", map[string]any{"rules": []map[string]string{{"kind": "device", "value": "phone", "target": "https://example.com/"}}}, "rules[0]: device \"phone\""},
		{"malformed language", map[string]any{"rules": []map[string]string{{"kind": "language", "value": "fr-CH", "target": "https://example.com/"}}}, "rules[0]: language \"fr-ch\""},
		{"unknown kind", map[string]any{"rules": []map[string]string{{"kind": "time", "value": "x", "target": "https://example.com/"}}}, "rules[0]: rule kind \"time\""},
		{"bad rule target", map[string]any{"rules": []map[string]string{{"kind": "device", "value": "ios", "target": "javascript:x"}}}, "rules[0].target"},
		{"short password", map[string]any{"password": "short"}, "password"},
		{"1 MB password", map[string]any{"password": strings.Repeat("p", 1<<20)}, "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"target": "https://example.com/bad"}
			for k, v := range tc.body {
				body[k] = v
			}
			if a := e.json("POST", "/api/links", key, body); a.status != 400 || !strings.Contains(a.body["error"].(string), tc.msg) {
				t.Fatalf("create: %d %s, want 400 naming %q", a.status, a.raw, tc.msg)
			}
			if p := e.json("PATCH", "/api/links/"+code, key, tc.body); p.status != 400 || !strings.Contains(p.body["error"].(string), tc.msg) {
				t.Fatalf("patch: %d %s, want 400 naming %q", p.status, p.raw, tc.msg)
			}
		})
	}
	var n int
	e.db.QueryRow(context.Background(), `SELECT count(*) FROM links`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d links after refusals, want 1", n)
	}
	if g := e.do("GET", "/api/links/"+code, key, "", ""); g.body["max_clicks"] != 100.0 || g.body["password_protected"] != true {
		t.Fatalf("a refused PATCH changed the link: %s", g.raw)
	}

	// PATCH: null removes an option; an absent field stays.
	p := e.do("PATCH", "/api/links/"+code, key, "application/json", `{"expires_at": null, "rules": null, "password": null, "forward_query": false}`)
	if p.status != 200 || p.body["expires_at"] != nil || p.body["rules"] != nil || p.body["password_protected"] != false ||
		p.body["forward_query"] != false || p.body["max_clicks"] != 100.0 {
		t.Fatalf("patch with nulls: %d %s", p.status, p.raw)
	}

	// Why a link stopped: expired, capped by the stats job, disabled.
	if _, err := e.db.Exec(context.Background(), `UPDATE links SET expires_at = now() - interval '1 second' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if g := e.do("GET", "/api/links/"+code, key, "", ""); g.body["stopped_reason"] != "expired" {
		t.Fatalf("expired link shows %s", g.raw)
	}
	if _, err := e.db.Exec(context.Background(), `UPDATE links SET expires_at = NULL, disabled = true, stop_reason = 'max_clicks' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if g := e.do("GET", "/api/links?q=example.com/f", key, "", ""); !strings.Contains(g.raw, `"stopped_reason":"max_clicks"`) {
		t.Fatalf("list shows %s", g.raw)
	}
	if p := e.json("PATCH", "/api/links/"+code, key, map[string]any{"disabled": false}); p.status != 200 || p.body["stopped_reason"] != nil {
		t.Fatalf("re-enabled: %d %s, want no stopped_reason", p.status, p.raw)
	}
	if p := e.json("PATCH", "/api/links/"+code, key, map[string]any{"disabled": true}); p.body["stopped_reason"] != "disabled" {
		t.Fatalf("disabled: %s", p.raw)
	}
}
