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
