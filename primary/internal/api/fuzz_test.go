package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"shortfleet/primary/internal/target"
)

// FuzzValidEmail: an accepted address is lower-case, at most 254 bytes,
// holds one @ and no space or control character, and is accepted again
// as itself.
func FuzzValidEmail(f *testing.F) {
	for _, s := range []string{"me@example.com", "Me@Example.COM", " me@example.com", "a@b", "\"a b\"@example.com", "me@example.com\r\nBcc: x@y", "<me@example.com>", "Me <me@example.com>", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ValidEmail(s)
		if err != nil {
			return
		}
		if e != strings.ToLower(e) || len(e) > 254 || strings.Count(e, "@") < 1 || strings.ContainsAny(e, "\r\n\t\x00<>") {
			t.Fatalf("%q accepted as %q", s, e)
		}
		if again, err := ValidEmail(e); err != nil || again != e {
			t.Fatalf("%q -> %q -> %q, %v", s, e, again, err)
		}
	})
}

// FuzzStatsRange reads the stats query parameters: an accepted range runs
// forward, spans at most 400 days, and its granularity is hour (at most
// 31 days) or day; a refused one says why.
func FuzzStatsRange(f *testing.F) {
	for _, q := range []string{"", "range=7d", "range=24h&granularity=hour", "range=0d", "range=-1h", "range=9223372036854775807h",
		"from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z", "from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "granularity=minute", "range=401d", "from=garbage"} {
		f.Add(q)
	}
	now := time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, q string) {
		if _, err := url.ParseQuery(q); err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/api/links/x/stats", nil)
		r.URL.RawQuery = q
		from, to, gran, err := StatsRange(r, now)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q: empty error", q)
			}
			return
		}
		if !from.Before(to) || to.Sub(from) > 400*24*time.Hour {
			t.Fatalf("%q: %v to %v", q, from, to)
		}
		if gran != "day" && !(gran == "hour" && to.Sub(from) <= 31*24*time.Hour) {
			t.Fatalf("%q: granularity %q over %v", q, gran, to.Sub(from))
		}
	})
}

// FuzzCreateBody sends arbitrary bodies through the JSON decoding and the
// checks of POST /api/links: a body is either refused with 400, 413 or
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
		n, err := CheckNew(p, req.Target, req.Alias, req.RedirectType)
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
