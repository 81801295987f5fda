package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"shortfleet/primary/internal/limit"
)

// TestReadOnlyKey: a key made with scope read lists, reads and exports,
// and gets a 403 saying it is read-only on everything that changes state,
// which stays unchanged; keys made without a scope, and the sign-up's,
// are write keys; a scope that is neither is refused.
func TestReadOnlyKey(t *testing.T) {
	e := setup(t, limit.Limits{})
	key := e.signup("scope@example.com")
	code := e.json("POST", "/api/links", key, map[string]any{"target": "https://example.com/r", "tags": []string{"keep"}}).body["code"].(string)
	c := e.json("POST", "/api/keys", key, map[string]string{"name": "dashboard", "scope": "read"})
	if c.status != 201 || c.body["scope"] != "read" {
		t.Fatalf("create a read key: %d %s", c.status, c.raw)
	}
	ro := c.body["api_key"].(string)
	if d := e.json("POST", "/api/keys", key, map[string]string{"name": "default scope"}); d.status != 201 || d.body["scope"] != "write" {
		t.Fatalf("a key without a scope: %d %s", d.status, d.raw)
	}
	if b := e.json("POST", "/api/keys", key, map[string]string{"name": "x", "scope": "admin"}); b.status != 400 || !strings.Contains(b.raw, "scope") {
		t.Fatalf("scope admin: %d %s", b.status, b.raw)
	}
	l := e.do("GET", "/api/keys", ro, "", "")
	if l.status != 200 || !strings.Contains(l.raw, `"name":"dashboard","prefix":"`+ro[:9]+`"`) || !strings.Contains(l.raw, `"scope":"read"`) || !strings.Contains(l.raw, `"scope":"write"`) {
		t.Fatalf("list keys with the read key: %d %s", l.status, l.raw)
	}
	for _, p := range []string{"/api/links", "/api/links/" + code, "/api/links/export", "/api/links/export?format=json", "/api/links/" + code + "/stats",
		"/api/links/" + code + "/stats.csv", "/api/tags", "/api/tags/keep/stats"} {
		if g := e.do("GET", p, ro, "", ""); g.status != 200 {
			t.Fatalf("GET %s with the read key: %d %s", p, g.status, g.raw)
		}
	}
	for _, w := range []struct{ method, path, ct, body string }{
		{"POST", "/api/links", "application/json", `{"target":"https://example.com/no"}`},
		{"POST", "/api/links/bulk", "text/csv", "https://example.com/no\n"},
		{"PATCH", "/api/links/" + code, "application/json", `{"disabled":true}`},
		{"POST", "/api/links/" + code + "/tags", "application/json", `{"tags":["more"]}`},
		{"DELETE", "/api/links/" + code + "/tags/keep", "", ""},
		{"POST", "/api/keys", "application/json", `{"name":"escalate"}`},
		{"DELETE", "/api/keys/" + jsonNum(c.body["id"].(float64)), "", ""},
	} {
		a := e.do(w.method, w.path, ro, w.ct, w.body)
		if a.status != http.StatusForbidden || !strings.Contains(a.raw, "read-only") || !strings.Contains(a.raw, w.method+" ") {
			t.Fatalf("%s %s with the read key: %d %s, want 403 saying the key is read-only", w.method, w.path, a.status, a.raw)
		}
	}
	var links, keys, tags int
	var disabled bool
	e.db.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM links), (SELECT count(*) FROM api_keys WHERE revoked_at IS NULL),
		(SELECT count(*) FROM link_tags), (SELECT bool_or(disabled) FROM links)`).Scan(&links, &keys, &tags, &disabled)
	if links != 1 || keys != 3 || tags != 1 || disabled {
		t.Fatalf("after the read key's refusals: %d links, %d live keys, %d tags, disabled %v; want 1, 3, 1, false", links, keys, tags, disabled)
	}
	if a := e.json("PATCH", "/api/links/"+code, key, map[string]any{"disabled": true}); a.status != 200 {
		t.Fatalf("the write key: %d %s", a.status, a.raw)
	}
}
