package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// browserURL is what a browser makes of a Location: it drops ASCII tabs
// and newlines, trims C0 controls and spaces, and reads a backslash as a
// slash (the WHATWG URL standard).
func browserURL(loc string) string {
	loc = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, loc)
	return strings.TrimFunc(loc, func(r rune) bool { return r <= ' ' })
}

// FuzzSafeNext: whatever ?next= holds, the redirect after log-in stays on
// this site, as a browser reads the Location.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/keys", "//evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "https://evil.example/",
		"/%2F/evil.example", "/a/..//evil.example", " //evil.example", "/.//evil.example", "javascript:alert(1)", "/links?q=1#x", ""} {
		f.Add(s)
	}
	base, _ := url.Parse("https://sho.rt/login")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != "/links" && got != next {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		w := httptest.NewRecorder()
		http.Redirect(w, httptest.NewRequest("POST", "/login", nil), got, http.StatusSeeOther)
		loc := w.Header().Get("Location")
		u, err := base.Parse(browserURL(loc))
		if err != nil {
			return // a browser would not follow it either
		}
		if u.Host != "sho.rt" || u.Scheme != "https" {
			t.Fatalf("next=%q: Location %q leads a browser to %s", next, loc, u)
		}
	})
}

// FuzzCheckCSRF: a form post passes only with the CSRF cookie's own HMAC
// in its csrf field; any other pair of cookie and field is refused.
func FuzzCheckCSRF(f *testing.F) {
	s := &Server{cfg: Config{CSRFKey: []byte("0123456789abcdef0123456789abcdef")}}
	seed := strings.Repeat("A", 43)
	f.Add(seed, "")
	f.Add(seed, "forged")
	f.Add("short", "x")
	f.Add("a;b=c", "\x00")
	f.Fuzz(func(t *testing.T, cookie, token string) {
		r := httptest.NewRequest("POST", "/links", strings.NewReader(url.Values{"csrf": {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: "sf_csrf", Value: cookie})
		ok := s.checkCSRF(r)
		c, err := r.Cookie("sf_csrf")
		if err != nil || len(c.Value) < 32 {
			if ok {
				t.Fatalf("cookie %q, token %q: passed without a usable cookie", cookie, token)
			}
			return
		}
		// What the form would have carried: the page's token for this cookie.
		w := httptest.NewRecorder()
		page := httptest.NewRequest("GET", "/links", nil)
		page.AddCookie(&http.Cookie{Name: "sf_csrf", Value: c.Value})
		want := s.csrfToken(w, page)
		if ok != (token == want) {
			t.Fatalf("cookie %q, token %q: passed %v, want %v", cookie, token, ok, token == want)
		}
	})
}
