package limit

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil: refused
	}{
		{"", []string{}},
		{"127.0.0.4", []string{"127.0.0.4/32"}},
		{" 10.1.2.3/8 , 2001:db8::/32 ,", []string{"10.0.0.0/8", "2001:db8::/32"}},
		{"::ffff:10.0.0.0/104", []string{"10.0.0.0/8"}}, // mapped: the IPv4 prefix it maps
		{"::ffff:192.0.2.4/128", []string{"192.0.2.4/32"}},
		{"::ffff:192.0.2.4", []string{"192.0.2.4/32"}},
		{"::ffff:0:0/96", []string{"0.0.0.0/0"}},
		{"::ffff:0:0/80", nil}, // wider than the mapped range
		{"fe80::1%eth0", nil},
		{"garbage", nil},
		{"10.0.0.0/33", nil},
	} {
		got, err := ParseTrustedProxies(split(tc.in))
		if tc.want == nil {
			if err == nil {
				t.Errorf("%q: %v, want refused", tc.in, got)
			}
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if err != nil || !slices.Equal(s, tc.want) {
			t.Errorf("%q: %v, %v; want %v", tc.in, s, err, tc.want)
		}
	}
}

// FuzzParseTrustedProxies reads -trusted-proxies
// (SHORTFLEET_TRUSTED_PROXIES): whatever it accepts is a list of masked
// prefixes, one an item, none of them IPv4-mapped (peers are compared
// unmapped, so such a prefix would match nothing), each holding the
// address its item names.
func FuzzParseTrustedProxies(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "10.1.2.3/8, 192.0.2.1", "2001:db8::/32,::ffff:10.0.0.1", " , ,", "garbage",
		"10.0.0.0/33", "1.2.3.4/-1", "fe80::1%eth0", "::ffff:10.0.0.0/104", "::ffff:0:0/95", "::ffff:1.2.3.4/128", "::/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseTrustedProxies(split(s))
		if err != nil {
			return
		}
		its := split(s)
		if len(ps) != len(its) {
			t.Fatalf("%q: %d prefixes from %d items", s, len(ps), len(its))
		}
		for i, p := range ps {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("%q: prefix %v is not masked, or mapped", s, p)
			}
			addr, _, _ := strings.Cut(its[i], "/")
			if a, err := netip.ParseAddr(addr); err == nil && !p.Contains(a.Unmap()) {
				t.Fatalf("%q: prefix %v does not hold %v", s, p, a)
			}
		}
	})
}

// split is the primary's reading of a comma-separated flag.
func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
