package target

import (
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
