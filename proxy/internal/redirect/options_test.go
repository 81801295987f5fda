package redirect

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"shortfleet/proxy/internal/geo"
	"shortfleet/proxy/internal/geo/geotest"
)

// featureLink creates a link with issue 21 options on the primary; rules
// is a JSON array or "".
func (e *env) featureLink(target string, expires *time.Time, forward bool, rules string) int64 {
	e.t.Helper()
	var r *string
	if rules != "" {
		r = &rules
	}
	var id int64
	err := e.pdb.QueryRow(context.Background(), `INSERT INTO links (user_id, target, expires_at, forward_query, rules)
		VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id`, e.user, target, expires, forward, r).Scan(&id)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestExpiry: a link answers 410 from its expiry instant on, to the
// nanosecond, whether it is cached or looked up.
func TestExpiry(t *testing.T) {
	e := setup(t, setupOpts{})
	at := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC) // Postgres keeps microseconds
	var clock atomic.Int64
	clock.Store(at.UnixNano() - 1)
	e.srv.cfg.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	cached := e.featureLink("https://example.com/soon", &at, false, "")
	uncached := e.featureLink("https://example.com/later", &at, false, "")
	e.waitReplay()

	for round := range 2 { // looked up, then cached
		if r := e.get("/" + e.code(cached)); r.StatusCode() != 302 || string(r.Header.Peek("Location")) != "https://example.com/soon" {
			t.Fatalf("round %d, 1 ns before expiry: %d %q", round, r.StatusCode(), r.Header.Peek("Location"))
		}
	}
	clock.Store(at.UnixNano())
	if _, ok := e.resolver.Cached(cached); !ok {
		t.Fatal("link not cached")
	}
	for name, id := range map[string]int64{"cached": cached, "looked up": uncached} {
		r := e.get("/" + e.code(id))
		if r.StatusCode() != 410 || !contains(r.Body(), "Link expired") {
			t.Fatalf("%s, at expiry: %d %q, want 410 Link expired", name, r.StatusCode(), r.Body())
		}
	}
}

func contains(b []byte, s string) bool { return len(s) == 0 || indexOf(string(b), s) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestForwardQuery: with forwarding on, the short URL's query string is
// appended to the target's, before its fragment; off (the default), it
// is dropped.
func TestForwardQuery(t *testing.T) {
	e := setup(t, setupOpts{})
	for _, c := range []struct {
		name, target string
		forward      bool
		query, want  string
	}{
		{"off", "https://example.com/a?x=1", false, "?utm=z", "https://example.com/a?x=1"},
		{"no query", "https://example.com/a?x=1", true, "", "https://example.com/a?x=1"},
		{"target without query", "https://example.com/a", true, "?utm=z&b=2", "https://example.com/a?utm=z&b=2"},
		{"both, repeated key", "https://example.com/a?x=1&utm=t", true, "?utm=z", "https://example.com/a?x=1&utm=t&utm=z"},
		{"fragment", "https://example.com/a?x=1#top", true, "?y=2", "https://example.com/a?x=1&y=2#top"},
		{"fragment, no query", "https://example.com/a#top", true, "?y=2", "https://example.com/a?y=2#top"},
		{"target ends in ?", "https://example.com/a?", true, "?y=2", "https://example.com/a?y=2"},
		{"target ends in &", "https://example.com/a?x=1&", true, "?y=2", "https://example.com/a?x=1&y=2"},
		{"escapes kept", "https://example.com/a", true, "?q=a%20b%26c", "https://example.com/a?q=a%20b%26c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := e.featureLink(c.target, nil, c.forward, "")
			if !c.forward {
				// A plain link: the default drops the query.
				id = e.createLink(c.target, 302, false)
			}
			e.waitReplay()
			for round := range 2 {
				r := e.get("/" + e.code(id) + c.query)
				if got := string(r.Header.Peek("Location")); r.StatusCode() != 302 || got != c.want {
					t.Fatalf("round %d: %d %q, want 302 %q", round, r.StatusCode(), got, c.want)
				}
			}
		})
	}
}

// TestRedirectRules: the first rule that matches gives the target; none,
// the link's own. The test client's address is 198.51.100.7, in JP.
func TestRedirectRules(t *testing.T) {
	e := setup(t, setupOpts{})
	raw, err := geotest.Build(geotest.Whois, map[string]string{"198.51.100.0/24": "JP", "192.0.2.0/24": "FR"})
	if err != nil {
		t.Fatal(err)
	}
	if e.srv.cfg.Countries, err = geo.OpenBytes(raw); err != nil {
		t.Fatal(err)
	}
	id := e.featureLink("https://example.com/default", nil, false, `[
		{"kind":"device","value":"ios","target":"https://example.com/ios"},
		{"kind":"language","value":"fr","target":"https://example.com/fr"},
		{"kind":"device","value":"android","target":"https://example.com/android"},
		{"kind":"country","value":"JP","target":"https://example.com/jp"}]`)
	fr := e.featureLink("https://example.com/default", nil, true, `[
		{"kind":"country","value":"FR","target":"https://example.com/fr?a=1"},
		{"kind":"device","value":"desktop","target":"https://example.com/desktop"}]`)
	// Rules the primary would refuse (written past it): the link goes to
	// its own target, and the proxy counts it.
	bad := e.featureLink("https://example.com/default", nil, false, `[{"kind":"moon","value":"full","target":"https://example.com/moon"}]`)
	e.waitReplay()
	const (
		iphone  = "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148\r\n"
		android = "User-Agent: Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36\r\n"
		desktop = "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
	)
	for _, c := range []struct {
		name, path string
		headers    []string
		want       string
	}{
		{"first rule", "/" + e.code(id), []string{iphone, "Accept-Language: fr-FR\r\n"}, "https://example.com/ios"},
		{"language, region ignored", "/" + e.code(id), []string{android, "Accept-Language: FR-ch, en;q=0.5\r\n"}, "https://example.com/fr"},
		{"language is the first only", "/" + e.code(id), []string{android, "Accept-Language: en, fr\r\n"}, "https://example.com/android"},
		{"country", "/" + e.code(id), []string{desktop, "Accept-Language: de\r\n"}, "https://example.com/jp"},
		{"no agent, no language", "/" + e.code(id), nil, "https://example.com/jp"},
		{"no match", "/" + e.code(fr), []string{iphone}, "https://example.com/default"},
		{"no match, forwarded", "/" + e.code(fr) + "?u=1", []string{iphone}, "https://example.com/default?u=1"},
		{"rule target, forwarded", "/" + e.code(fr) + "?u=1", []string{desktop}, "https://example.com/desktop?u=1"},
		{"bad rules", "/" + e.code(bad), []string{desktop}, "https://example.com/default"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for round := range 2 {
				r := e.raw(req("GET", c.path, c.headers...))
				if got := string(r.Header.Peek("Location")); r.StatusCode() != 302 || got != c.want {
					t.Fatalf("round %d: %d %q, want 302 %q", round, r.StatusCode(), got, c.want)
				}
			}
		})
	}
	if n := e.resolver.Stats().BadRules; n != 1 {
		t.Fatalf("%d lookups of bad rules counted, want 1", n)
	}
	// The log says which rule answered: 1 + its index, 0 for none.
	got := map[[2]int64]int{}
	for _, row := range e.records() {
		got[[2]int64{row.LinkID, int64(row.Rule)}]++
	}
	want := map[[2]int64]int{{id, 1}: 2, {id, 2}: 2, {id, 3}: 2, {id, 4}: 4, {fr, 0}: 4, {fr, 2}: 2, {bad, 0}: 2}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("link %d logged with rule %d %d times, want %d (all: %v)", k[0], k[1], got[k], n, got)
		}
	}
}

func TestFirstLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"fr-CH, fr;q=0.9": "fr", "  de": "de", "en_US": "en", "*": "", "": "", "x": "", "fr1": "", "gsw;q=1": "gsw",
		"abcdefghi": "", "zh-Hant-TW": "zh",
	} {
		if got := string(FirstLanguage([]byte(in))); got != want {
			t.Errorf("FirstLanguage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDeviceOf(t *testing.T) {
	for in, want := range map[string]string{
		"Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)":                "ios",
		"Mozilla/5.0 (Linux; Android 14; SM-X710) Chrome/131.0":        "android",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Safari/605.1": "desktop",
		"Mozilla/5.0 (Mobile; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS":  "",
		"": "", "curl/8.5.0": "",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/128.0":                                                 "desktop",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36":                                          "desktop",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/1":                                   "ios",
		"Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 Mobile Safari/534.30":            "android",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 iPhone": "desktop",
	} {
		if got := string(DeviceOf([]byte(in))); got != want {
			t.Errorf("DeviceOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzFirstLanguage: whatever the header, the language is a prefix of it
// after spaces, of 2 to 8 letters, or nothing.
func FuzzFirstLanguage(f *testing.F) {
	for _, s := range []string{"fr-CH, fr;q=0.9", "*", "", " en", "zh-Hant-TW", "\xff\xfe"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, h []byte) {
		l := FirstLanguage(h)
		if l == nil {
			return
		}
		if len(l) < 2 || len(l) > 8 || !contains(trimSpace(h), string(l)) {
			t.Fatalf("FirstLanguage(%q) = %q", h, l)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				t.Fatalf("FirstLanguage(%q) = %q", h, l)
			}
		}
	})
}
