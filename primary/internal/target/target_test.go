package target

import (
	"maps"
	"net/url"
	"os"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means rejected
	}{
		{"https://example.com/a?b=c#d", "https://example.com/a?b=c#d"},
		{"  HTTP://Example.COM/Path  ", "http://example.com/Path"},
		{"https://bücher.example/ü", "https://xn--bcher-kva.example/%C3%BC"},
		{"https://[2001:DB8::1]:8443/x", "https://[2001:db8::1]:8443/x"},
		{"https://example.com:8080", "https://example.com:8080"},
		{"javascript:alert(1)", ""},
		{"data:text/html,hi", ""},
		{"ftp://example.com/", ""},
		{"//example.com/", ""},
		{"example.com", ""},
		{"https://", ""},
		{"https:example.com", ""},
		{"https://user:pw@example.com/", ""},
		{"https://example.com/\r\nSet-Cookie: x", ""},
		{"https://exa mple.com/", ""},
		{"https://example.com:/", ""},
		{"https://" + strings.Repeat("a", MaxLen), ""},
		{"", ""},
		{"https://xn--/", ""},
	} {
		got, err := Normalize(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Normalize(%q) = %q, want an error", tc.in, got)
			} else if !IsInvalid(err) {
				t.Errorf("Normalize(%q): error %v is not a validation error", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"https://example.com/", "http://bücher.example", "https://[::1]:80/", "javascript:x", "https://a@b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("Normalize(%q): unclassified error %v", in, err)
			}
			return
		}
		if !strings.HasPrefix(out, "http://") && !strings.HasPrefix(out, "https://") {
			t.Fatalf("Normalize(%q) = %q: not http(s)", in, out)
		}
		if len(out) > MaxLen {
			t.Fatalf("Normalize(%q) is %d bytes", in, len(out))
		}
		if strings.ContainsAny(out, "\r\n\x00 ") {
			t.Fatalf("Normalize(%q) = %q holds a control character", in, out)
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Fatalf("Normalize not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}

// TestLoadBlocklist reads a blocklist file as an operator writes one and
// checks what the policy then refuses.
func TestLoadBlocklist(t *testing.T) {
	blocked, err := LoadBlocklist("testdata/blocklist.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"evil.example": true, "spam.example": true, "xn--bcher-spam-9db.example": true, "tracker.example": true}
	if !maps.Equal(blocked, want) {
		t.Fatalf("read %v, want %v", blocked, want)
	}
	p := &Policy{ShortHosts: []string{"sho.rt"}, Blocked: blocked}
	for _, tc := range []struct {
		target, refused string // refused: what the error names; "" when allowed
	}{
		{"https://evil.example/x", "links to evil.example are not allowed"},
		{"https://WWW.Evil.Example./", "links to evil.example are not allowed"}, // the same host, fully qualified
		{"https://www.EVIL.example/", "links to evil.example are not allowed"},
		{"https://a.b.spam.example/", "links to spam.example are not allowed"},
		{"https://bücher-spam.example/", "links to xn--bcher-spam-9db.example are not allowed"},
		{"https://shop.xn--bcher-spam-9db.example/", "links to xn--bcher-spam-9db.example are not allowed"},
		{"http://tracker.example:8080/", "links to tracker.example are not allowed"},
		{"https://notevil.example/", ""},
		{"https://evil.example.com/", ""},
		{"https://phish.example/", ""},
		{"https://sho.rt/abc", "would loop"},
		{"https://SHO.RT./abc", "would loop"},
	} {
		_, err := p.Check(tc.target)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: refused (%v), want allowed", tc.target, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s: %v, want refused with %q", tc.target, err, tc.refused)
		}
	}
	if _, err := LoadBlocklist("testdata/no-such-file.txt"); err == nil || !strings.Contains(err.Error(), "read blocklist") {
		t.Fatalf("a missing file: %v", err)
	}
}

// FuzzParseBlocklist reads an operator's blocklist file: every domain kept
// is lower-case text without spaces, comments or surrounding dots, and a
// link to it, or to a subdomain of it, is refused.
func FuzzParseBlocklist(f *testing.F) {
	if data, err := os.ReadFile("testdata/blocklist.txt"); err == nil {
		f.Add(string(data))
	}
	f.Add("evil.example\n# comment\n  Spam.Example.  # trailing\nbücher.example\n\n")
	f.Add("\xff\n.\n..\n#\n")
	f.Fuzz(func(t *testing.T, data string) {
		for d := range ParseBlocklist(data) {
			if d == "" || strings.ContainsAny(d, "# \t\r\n") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
				t.Fatalf("kept %q", d)
			}
			p := &Policy{Blocked: map[string]bool{d: true}}
			for _, u := range []string{"https://" + d + "/", "https://www." + d + "/x"} {
				out, err := Normalize(u)
				if err != nil {
					continue
				}
				// Only a URL whose host is d or under it is a link to d
				// ("/" as a domain makes https://www.//x, host www.).
				pu, _ := url.Parse(out)
				host := strings.TrimSuffix(pu.Hostname(), ".")
				if host != d && !strings.HasSuffix(host, "."+d) {
					continue
				}
				if _, err := p.Check(u); err == nil {
					t.Fatalf("blocklist %q: %s (%s) allowed", d, u, out)
				}
			}
		}
	})
}

// FuzzValidAlias: an accepted alias is 3 to 64 of [A-Za-z0-9_-] and not
// shaped like a code, so it can never shadow one.
func FuzzValidAlias(f *testing.F) {
	for _, s := range []string{"spring-sale", "abc1234", "abc_123", "ab", "<script>", "ünï", strings.Repeat("a", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, a string) {
		if ValidAlias(a) != nil {
			return
		}
		if len(a) < 3 || len(a) > 64 || strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			t.Fatalf("alias %q accepted", a)
		}
		if len(a) == 7 && !strings.ContainsAny(a, "_-") {
			t.Fatalf("code-shaped alias %q accepted", a)
		}
	})
}
