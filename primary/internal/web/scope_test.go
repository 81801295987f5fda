package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestReadOnlyKeyPage: the keys page makes a read-only key, lists it as
// such, and the API refuses it a creation (403) while it lists links; a
// scope that is neither read nor write is refused on the form.
func TestReadOnlyKeyPage(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.signup("ro@example.com")
	resp, body := b.post("/keys", "/keys", url.Values{"name": {"reader"}, "scope": {"read"}})
	m := newKeyRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusCreated || m == nil {
		t.Fatalf("create a read key: %d %s", resp.StatusCode, body)
	}
	key := m[1]
	if !regexp.MustCompile(`<td>reader</td><td class="mono">[^<]*</td><td class="scope">read-only</td>`).MatchString(body) {
		t.Fatalf("the keys page does not list the key as read-only:\n%s", body)
	}
	if code := e.apiCreate(key); code != http.StatusForbidden {
		t.Fatalf("a creation with the read key: %d, want 403", code)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/links", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if r, err := e.srv.Client().Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("listing with the read key: %v %v", r, err)
	}
	if resp, body := b.post("/keys", "/keys", url.Values{"name": {"x"}, "scope": {"root"}}); resp.StatusCode != 400 || !strings.Contains(body, "scope") {
		t.Fatalf("scope root: %d", resp.StatusCode)
	}
	if code := e.apiCreate(b.newKey("writer")); code != http.StatusCreated {
		t.Fatalf("a key made without a scope: %d, want a write key", code)
	}
}
