package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"shortfleet/primary/internal/linkreq"
	"shortfleet/primary/internal/target"
)

// FuzzCreateBody sends arbitrary bodies through the JSON decoding of
// POST /api/links and the checks both front ends share (linkreq.CheckNew,
// fuzzed alone by FuzzCheckNew): a body is either refused with 400, 413 or
// 415, or yields a link to an http(s) URL that is not the shortener's nor
// blocked, with a valid alias and redirect type.
func FuzzCreateBody(f *testing.F) {
	for _, s := range []string{`{"target":"https://example.com/"}`, `{"target":"https://example.com/","alias":"spring-sale","redirect_type":301}`,
		`{"target":"javascript:alert(1)"}`, `{"target":"https://sho.rt/x"}`, `{"target":"https://www.evil.example./"}`, `{"target":"https://example.com/","x":1}`,
		`{"target":"https://example.com/"} {}`, `{"target":"https://example.com/","redirect_type":1e99}`, `{"alias":"<script>"}`, `[]`, `"\ud800"`} {
		f.Add(s, "application/json")
	}
	f.Add(`{"target":"https://example.com/"}`, "text/plain")
	p := &target.Policy{ShortHosts: []string{"sho.rt"}, Blocked: map[string]bool{"evil.example": true}}
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest("POST", "/api/links", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		var req createRequest
		if !decode(w, r, &req) {
			switch w.Code {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("%q: refused with %d", body, w.Code)
			}
			return
		}
		n, err := linkreq.CheckNew(p, req.Target, req.Alias, req.RedirectType)
		if err != nil {
			return
		}
		u, perr := url.Parse(n.Target)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("%q: target %q accepted", body, n.Target)
		}
		host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if host == "sho.rt" || host == "evil.example" || strings.HasSuffix(host, ".evil.example") {
			t.Fatalf("%q: target %q past the policy", body, n.Target)
		}
		if n.Alias != "" && target.ValidAlias(n.Alias) != nil {
			t.Fatalf("%q: alias %q accepted", body, n.Alias)
		}
		switch n.RedirectType {
		case 301, 302, 307, 308:
		default:
			t.Fatalf("%q: redirect type %d", body, n.RedirectType)
		}
	})
}
