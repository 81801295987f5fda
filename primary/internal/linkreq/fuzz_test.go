package linkreq

import (
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"shortfleet/primary/internal/store"
	"shortfleet/primary/internal/target"
)

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
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		from, to, gran, err := StatsRange(v, now)
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

// FuzzCheckNew checks a link to create as both front ends do (the API's
// JSON body, a form, a line of a CSV import): it is refused, or it is a
// link to an http(s) URL that is not the shortener's nor blocked, with a
// valid alias and redirect type.
func FuzzCheckNew(f *testing.F) {
	for _, s := range []struct {
		target, alias string
		rt            int
	}{{"https://example.com/", "", 0}, {"https://example.com/", "spring-sale", 301}, {"javascript:alert(1)", "", 0},
		{"https://sho.rt/x", "", 0}, {"https://www.evil.example./", "", 0}, {"https://example.com/", "<script>", 0},
		{"https://example.com/", "", 1}, {"https://example.com/", "", 308}, {"", "", 0}} {
		f.Add(s.target, s.alias, s.rt)
	}
	p := &target.Policy{ShortHosts: []string{"sho.rt"}, Blocked: map[string]bool{"evil.example": true}}
	f.Fuzz(func(t *testing.T, tgt, alias string, rt int) {
		n, err := CheckNew(p, tgt, alias, rt)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q %q %d: empty error", tgt, alias, rt)
			}
			return
		}
		u, perr := url.Parse(n.Target)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("%q: target %q accepted", tgt, n.Target)
		}
		host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if host == "sho.rt" || host == "evil.example" || strings.HasSuffix(host, ".evil.example") {
			t.Fatalf("%q: target %q past the policy", tgt, n.Target)
		}
		if n.Alias != alias || (n.Alias != "" && target.ValidAlias(n.Alias) != nil) {
			t.Fatalf("alias %q accepted as %q", alias, n.Alias)
		}
		switch {
		case rt == 0 && n.RedirectType == 302:
		case rt == n.RedirectType && (rt == 301 || rt == 302 || rt == 307 || rt == 308):
		default:
			t.Fatalf("redirect type %d accepted as %d", rt, n.RedirectType)
		}
	})
}

// FuzzCheckReason: an accepted takedown reason is trimmed, non-empty,
// UTF-8, within the bound and free of control characters but newlines
// and tabs, and checking it again accepts it unchanged; a refused one
// says it is the reason.
func FuzzCheckReason(f *testing.F) {
	for _, s := range []string{"", "  ", "phishing", " spam \n", "a\x00b", "\x7f", "\xff", strings.Repeat("é", 500), strings.Repeat("é", 501), "tab\there"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := CheckReason(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "reason: ") || r != "" {
				t.Fatalf("%q: refused with %q, %q", s, err, r)
			}
			return
		}
		if r == "" || r != strings.TrimSpace(r) || !utf8.ValidString(r) || utf8.RuneCountInString(r) > store.MaxReasonLen {
			t.Fatalf("%q accepted as %q", s, r)
		}
		for _, c := range r {
			if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
				t.Fatalf("%q accepted with control character %U", s, c)
			}
		}
		if again, err := CheckReason(r); err != nil || again != r {
			t.Fatalf("%q: accepted as %q, then %q, %v", s, r, again, err)
		}
	})
}

// FuzzLinkRef: the reference an admin types is a code, an alias or a
// short URL; what is read from it holds no slash, query or fragment.
func FuzzLinkRef(f *testing.F) {
	for _, s := range []string{"", "abcdefg", "https://sho.rt/abcdefg", "https://sho.rt/my-alias?x=1#y", " /x/ ", "///", "a?b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := LinkRef(s)
		if strings.ContainsAny(r, "/?#") || !strings.Contains(s, r) {
			t.Fatalf("%q read as %q", s, r)
		}
	})
}
