package redirect

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// FuzzParseTrustedProxies reads -trusted-proxies
// (SHORTFLEET_TRUSTED_PROXIES): whatever it accepts is a list of masked
// prefixes, one a non-empty item, each containing the address its item
// names as the proxy sees a peer (IPv4-mapped addresses unmapped), none of
// them IPv4-mapped (a prefix no unmapped peer is ever in); what it refuses
// names the flag.
func FuzzParseTrustedProxies(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "10.1.2.3/8, 192.0.2.1", "2001:db8::/32,::ffff:10.0.0.1", " , ,", "garbage", "10.0.0.0/33", "1.2.3.4/-1", "fe80::1%eth0",
		"::ffff:10.0.0.0/104", "::ffff:192.0.2.1/128", "::ffff:0.0.0.0/96", "::ffff:10.0.0.0/80", "::ffff:10.0.0.0/95", "::/0", "::ffff:10.1.2.3/104,10.0.0.0/8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseTrustedProxies(s)
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		if err != nil {
			if !strings.Contains(err.Error(), "-trusted-proxies") {
				t.Fatalf("%q: error %v does not name the flag", s, err)
			}
			return
		}
		if len(ps) != len(items) {
			t.Fatalf("%q: %d prefixes from %d items", s, len(ps), len(items))
		}
		for i, p := range ps {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("%q: prefix %v is not masked", s, p)
			}
			addr := items[i]
			if a, _, ok := strings.Cut(addr, "/"); ok {
				addr = a
			}
			if p.Addr().Is4In6() {
				t.Fatalf("%q: prefix %v is IPv4-mapped: peers are unmapped before matching, so none is in it", s, p)
			}
			if a, err := netip.ParseAddr(addr); err == nil && !p.Contains(a.Unmap()) {
				t.Fatalf("%q: prefix %v does not hold %v as a peer's address (%v)", s, p, a, a.Unmap())
			}
		}
	})
}

// TestParseTrustedProxies: IPv4-mapped CIDRs are the IPv4 prefixes they
// name, since the proxy unmaps a peer's address before matching it; a
// mapped address under a prefix shorter than /96 (part IPv4, part IPv6)
// is refused rather than kept as a prefix no peer is in.
func TestParseTrustedProxies(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // the prefixes, comma-separated; "error" for a refusal
	}{
		{"", ""},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8, 192.0.2.1", "10.0.0.0/8,192.0.2.1/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:10.9.8.7/104", "10.0.0.0/8"},
		{"::ffff:192.0.2.1/128", "192.0.2.1/32"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"::ffff:192.0.2.1", "192.0.2.1/32"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"::/0", "::/0"},
		{"::ffff:10.0.0.0/80", "error"},
		{"::ffff:10.0.0.0/95", "error"},
		{"fe80::1%eth0", "error"},
		{"10.0.0.0/33", "error"},
	} {
		t.Run(c.in, func(t *testing.T) {
			ps, err := ParseTrustedProxies(c.in)
			if c.want == "error" {
				if err == nil || !strings.Contains(err.Error(), "-trusted-proxies") {
					t.Fatalf("got %v, %v; want an error naming -trusted-proxies", ps, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if strings.Join(got, ",") != c.want {
				t.Fatalf("got %v, want %s", got, c.want)
			}
		})
	}
	// What the issue was about: a peer in 10/8, seen unmapped, matches.
	ps, _ := ParseTrustedProxies("::ffff:10.0.0.0/104")
	peer := netip.MustParseAddr("::ffff:10.1.2.3").Unmap()
	if len(ps) != 1 || !ps[0].Contains(peer) {
		t.Fatalf("%v does not hold the peer %v", ps, peer)
	}
}

// FuzzParseRedactHeaders reads -redact-headers (SHORTFLEET_REDACT_HEADERS):
// whatever it accepts is one name a non-empty item, each the item itself,
// an HTTP token, and none a header the log keeps in a column of its own;
// what it refuses names the flag.
func FuzzParseRedactHeaders(f *testing.F) {
	for _, s := range []string{"", "X-Api-Key", "x-api-key, X-Session-Token", " , ,", "X Api", "X-Api:", "user-agent", "REFERER,X-A", "X-\xff", "Host", "!#$%&'*+-.^_`|~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names, err := ParseRedactHeaders(s)
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		if err != nil {
			if !strings.Contains(err.Error(), "-redact-headers") {
				t.Fatalf("%q: error %v does not name the flag", s, err)
			}
			return
		}
		if len(names) != len(items) {
			t.Fatalf("%q: %d names from %d items", s, len(names), len(items))
		}
		for i, n := range names {
			if n != items[i] {
				t.Fatalf("%q: name %q from item %q", s, n, items[i])
			}
			// A token as net/http reads header names: it would send it.
			if !httpguts.ValidHeaderFieldName(n) {
				t.Fatalf("%q: %q is not a header name", s, n)
			}
			switch http.CanonicalHeaderKey(n) {
			case "Host", "User-Agent", "Referer", "Accept-Language":
				t.Fatalf("%q: %q has a column of its own", s, n)
			}
		}
	})
}

// TestParseRedactHeaders: names are kept as given (the proxy matches them
// without regard to case); a name that is not a token, or that has a
// column of its own, is refused.
func TestParseRedactHeaders(t *testing.T) {
	for _, c := range []struct {
		in, want string // want: the names, comma-separated; "error" for a refusal
	}{
		{"", ""},
		{"X-Api-Key", "X-Api-Key"},
		{" x-api-key ,, X-Session-Token", "x-api-key,X-Session-Token"},
		{"X Api", "error"},
		{"X-Api:", "error"},
		{"user-agent", "error"},
		{"X-A,REFERER", "error"},
		{"host", "error"},
		{"Accept-Language", "error"},
	} {
		t.Run(c.in, func(t *testing.T) {
			names, err := ParseRedactHeaders(c.in)
			if c.want == "error" {
				if err == nil || !strings.Contains(err.Error(), "-redact-headers") {
					t.Fatalf("got %q, %v; want an error naming -redact-headers", names, err)
				}
				return
			}
			if err != nil || strings.Join(names, ",") != c.want {
				t.Fatalf("got %q, %v; want %s", names, err, c.want)
			}
		})
	}
}
