package target

import (
	"maps"
	"math/big"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/idna"
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
		// Hosts as a browser reads them (WHATWG URL host parsing);
		// Chromium's new URL(...).host gives the same for each (checked
		// by hand), except that it takes "127.0.0.1.." for a domain name,
		// which is refused here.
		{"http://00000000000000000000000000177.1/", "http://127.0.0.1/"},
		{"http://0x00000000000000000000007f.1/", "http://127.0.0.1/"},
		{"http://0/", "http://0.0.0.0/"},
		{"http://127.1/x", "http://127.0.0.1/x"},
		{"http://2130706433:8080/", "http://127.0.0.1:8080/"},
		{"http://0x7f.0.0.1/", "http://127.0.0.1/"},
		{"http://0177.0.0.01/", "http://127.0.0.1/"},
		{"http://0X7F000001/", "http://127.0.0.1/"},
		{"http://127.0.1/", "http://127.0.0.1/"},
		{"http://127.0.0.1./", "http://127.0.0.1/"},
		{"http://0x.0x.0/", "http://0.0.0.0/"},
		{"http://0xffffffff/", "http://255.255.255.255/"},
		{"http://１２７。０。０。１/", "http://127.0.0.1/"},
		{"http://%EF%BC%91%EF%BC%92%EF%BC%97.0.0.1/", "http://127.0.0.1/"},
		{"http://[::FFFF:127.0.0.1]/", "http://[::ffff:127.0.0.1]/"},
		{"http://[0:0:0:0:0:ffff:7f00:1]/", "http://[::ffff:127.0.0.1]/"},
		{"http://4294967296/", ""},       // over 32 bits
		{"http://256.0.0.1/", ""},        // a part over 255
		{"http://1.2.3.4.5/", ""},        // five parts
		{"http://09.0.0.1/", ""},         // not octal
		{"http://1.2.3.09/", ""},         // the last part is not octal either
		{"http://example.123/", ""},      // ends in a number, so an address, and not one
		{"http://foo.0x4/", ""},          // the same, in hex
		{"http://127.0.0.1../", ""},      // an empty part
		{"http://1.256.3/", ""},          // a middle part over 255
		{"http://1.2.65536/", ""},        // the last part over its 16 bits
		{"http://[fe80::1%25eth0]/", ""}, // a zone
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

// The fleets the loop checks are tried on: the local fleet's (everything
// on loopback, the short base on 127.0.0.1) and one on real addresses.
var (
	loopbackFleet = &Policy{ShortHosts: []string{"127.0.0.1"}, FleetHosts: []string{"127.0.0.4", "127.0.0.11", "127.0.0.12", "127.0.0.2"}}
	publicFleet   = &Policy{ShortHosts: []string{"Sho.RT."}, FleetHosts: []string{"192.0.2.5", "198.51.100.11", "[2001:DB8::5]", "app.example"}}
)

// TestPolicyLoops: a link to a host the fleet serves on is refused
// however the host is written, as long as a browser would go there.
func TestPolicyLoops(t *testing.T) {
	for _, tc := range []struct {
		p       *Policy
		target  string
		refused bool
	}{
		{loopbackFleet, "http://127.0.0.1:8080/abc", true},
		{loopbackFleet, "http://127.1:8080/abc", true},
		{loopbackFleet, "http://2130706433:8080/abc", true},
		{loopbackFleet, "http://0x7f.0.0.1/", true},
		{loopbackFleet, "http://0177.0.0.1/", true},
		{loopbackFleet, "http://[::ffff:127.0.0.1]:8080/abc", true},
		{loopbackFleet, "http://[::ffff:7f00:1]/", true},
		{loopbackFleet, "http://１２７。０。０。１/", true},
		{loopbackFleet, "http://127.0.0.1./", true},
		{loopbackFleet, "http://127.0.0.11:8080/CODE", true}, // a proxy, as tried on the local fleet
		{loopbackFleet, "http://127.0.0.11:9090/segments", true},
		{loopbackFleet, "http://127.0.0.4:8080/x", true}, // the balancer
		{loopbackFleet, "http://127.0.0.2:8000/api/links", true},
		// A loopback fleet refuses every loopback host: any of them
		// may be one of its servers.
		{loopbackFleet, "http://localhost:8080/abc", true},
		{loopbackFleet, "http://LocalHost./abc", true},
		{loopbackFleet, "http://shop.localhost/", true},
		{loopbackFleet, "http://127.9.9.9/", true},
		{loopbackFleet, "http://[::1]:8080/", true},
		{loopbackFleet, "http://0.0.0.0:8080/", true},
		{loopbackFleet, "http://0/", true},
		{loopbackFleet, "http://[::]/", true},
		{loopbackFleet, "https://example.com/", false},
		{loopbackFleet, "http://128.0.0.1/", false},
		{loopbackFleet, "http://localhost.example/", false},

		{publicFleet, "https://sho.rt/abc", true},
		{publicFleet, "https://SHO.RT./abc", true},
		{publicFleet, "https://www.sho.rt/abc", true}, // a subdomain of the short host
		{publicFleet, "https://a.b.Sho.Rt./abc", true},
		{publicFleet, "http://192.0.2.5/abc", true}, // a balancer
		{publicFleet, "http://3221225989/abc", true},
		{publicFleet, "http://0xc0.0.2.5/abc", true},
		{publicFleet, "http://[::ffff:192.0.2.5]/abc", true},
		{publicFleet, "http://198.51.100.11:8080/abc", true}, // a proxy
		{publicFleet, "http://[2001:db8:0::5]/", true},
		{publicFleet, "https://APP.example./links", true}, // the primary app
		{publicFleet, "https://notsho.rt/abc", false},
		{publicFleet, "https://sho.rt.example/abc", false},
		{publicFleet, "https://www.app.example/", false}, // only the short host's subdomains
		{publicFleet, "http://192.0.2.6/", false},
		// A fleet on real addresses lets a link send its clicker to
		// their own machine: that is no loop.
		{publicFleet, "http://localhost:3000/", false},
		{publicFleet, "http://127.0.0.1/", false},
	} {
		_, err := tc.p.Check(tc.target)
		switch {
		case tc.refused && (err == nil || !strings.Contains(err.Error(), "would loop")):
			t.Errorf("%s (short hosts %v): %v, want refused as a loop", tc.target, tc.p.ShortHosts, err)
		case !tc.refused && err != nil:
			t.Errorf("%s (short hosts %v): refused (%v), want allowed", tc.target, tc.p.ShortHosts, err)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"[::ffff:127.0.0.1]", "127.0.0.1"},
		{"::FFFF:7F00:1", "127.0.0.1"},
		{"[2001:DB8::1]", "2001:db8::1"},
		{"Sho.RT.", "sho.rt"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"example.123", ""},
		{"a..b", ""},
		{"fe80::1%eth0", ""},
		{"", ""},
	} {
		got, err := CanonicalHost(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("CanonicalHost(%q) = %q, want an error", tc.in, got)
			}
		} else if got != tc.want || err != nil {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// browserHost reads a URL's host as the WHATWG URL standard does, written
// apart from the code under test (big numbers instead of a saturating
// parser; the spec's steps in their order), to check it: the host a
// browser connects to, in CanonicalHost's form, or ok false when a
// browser would refuse the URL.
func browserHost(t *testing.T, raw string) (host string, ok bool) {
	_, rest, found := strings.Cut(raw, "://")
	if !found {
		t.Fatalf("%q has no authority", raw)
	}
	if i := strings.IndexAny(rest, "/?#\\"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", false
		}
		a, err := netip.ParseAddr(rest[1:end])
		if err != nil || a.Zone() != "" {
			return "", false
		}
		return a.Unmap().String(), true
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	dec, err := url.PathUnescape(rest)
	if err != nil {
		return "", false
	}
	// The standard's domain to ASCII: UTS 46, nontransitional, without
	// the hyphen and STD3 checks.
	ascii, err := idna.New(idna.MapForLookup(), idna.Transitional(false), idna.CheckHyphens(false), idna.StrictDomainName(false), idna.BidiRule()).ToASCII(dec)
	if err != nil || ascii == "" {
		return "", false
	}
	parts := strings.Split(ascii, ".")
	if len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	number := func(s string) (*big.Int, bool) {
		if s == "" {
			return nil, false
		}
		base := 10
		if len(s) >= 2 && strings.EqualFold(s[:2], "0x") {
			base, s = 16, s[2:]
		} else if len(s) >= 2 && s[0] == '0' {
			base, s = 8, s[1:]
		}
		if s == "" {
			return new(big.Int), true
		}
		if strings.ContainsAny(s, "+-_") { // SetString allows what the spec does not
			return nil, false
		}
		return new(big.Int).SetString(s, base)
	}
	last := parts[len(parts)-1]
	_, lastIsNumber := number(last)
	if !lastIsNumber && (last == "" || strings.Trim(last, "0123456789") != "") {
		return strings.TrimRight(ascii, "."), true // a domain
	}
	if len(parts) > 4 {
		return "", false
	}
	v := new(big.Int)
	for i, p := range parts {
		n, ok := number(p)
		if !ok {
			return "", false
		}
		if i < len(parts)-1 {
			if n.Cmp(big.NewInt(255)) > 0 {
				return "", false
			}
			v.Add(v, new(big.Int).Lsh(n, uint(8*(3-i))))
		} else {
			if n.Cmp(new(big.Int).Lsh(big.NewInt(1), uint(8*(5-len(parts))))) >= 0 {
				return "", false
			}
			v.Add(v, n)
		}
	}
	u := v.Uint64()
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}).String(), true
}

// FuzzNormalize: what Normalize accepts is an http(s) URL without control
// characters, within MaxLen, normalised for good; and a target a policy
// accepts never takes a browser to a host of the fleet: read as a
// browser reads it (browserHost), its host is none of the fleet's, not
// the short host or under it, and, for a fleet on loopback, not loopback.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"https://example.com/", "http://bücher.example", "https://[::1]:80/", "javascript:x", "https://a@b/",
		"http://127.1/", "http://2130706433/", "http://0x7f.0.0.1/", "http://0177.0.0.1/", "http://[::ffff:127.0.0.1]/",
		"http://localhost/", "http://LOCALHOST./", "http://127.0.0.11:8080/CODE", "http://a.sho.rt/", "http://SHO.RT./",
		"http://127.0.0.1.:80/", "http://１２７。0。0。1/", "http://0x7f000001/", "http://0/", "http://[::]/", "http://x.localhost/",
		"http://0xc0.0.2.5/", "http://3221225989/", "http://[2001:db8::5]/", "http://app.example./", "http://127.0.0.1../",
		"http://0x.0x.0/", "http://09.0.0.1/", "http://example.123/", "http://[fe80::1%25eth0]/"} {
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
		host, ok := browserHost(t, out)
		if !ok {
			return // a browser refuses it: it goes nowhere
		}
		for _, p := range []*Policy{loopbackFleet, publicFleet} {
			if _, err := p.Check(in); err != nil {
				continue
			}
			short := canonicalAll(p.ShortHosts)[0]
			fleet := canonicalAll(p.FleetHosts)
			switch {
			case host == short || strings.HasSuffix(host, "."+short):
				t.Fatalf("%q (%s) accepted: a browser goes to %s, the short host %s", in, out, host, short)
			case slices.Contains(fleet, host):
				t.Fatalf("%q (%s) accepted: a browser goes to %s, a fleet host", in, out, host)
			case p == loopbackFleet && isLoopbackRef(host):
				t.Fatalf("%q (%s) accepted: a browser goes to %s, loopback, where the fleet runs", in, out, host)
			}
		}
	})
}

// isLoopbackRef is what reaches the machine a link is followed on.
func isLoopbackRef(host string) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().IsLoopback() || a.IsUnspecified()
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
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

func TestRefusal(t *testing.T) {
	p := &Policy{ShortHosts: []string{"sho.rt"}, Blocked: map[string]bool{"bad.example": true}}
	for in, want := range map[string]string{
		"https://good.example/":     "",
		"https://cdn.bad.example/x": "blocklist: links to bad.example are not allowed here",
		"https://sho.rt/abc":        "blocklist: it points at this shortener (sho.rt), which would loop",
	} {
		if got := p.Refusal(in); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}
