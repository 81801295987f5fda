package main

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzParsePrefixes reads -trusted-proxies (SHORTFLEET_TRUSTED_PROXIES):
// whatever it accepts is a list of masked prefixes, one a non-empty item,
// each containing the address its item names; what it refuses names the
// item.
func FuzzParsePrefixes(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "10.1.2.3/8, 192.0.2.1", "2001:db8::/32,::ffff:10.0.0.1", " , ,", "garbage", "10.0.0.0/33", "1.2.3.4/-1", "fe80::1%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parsePrefixes(s)
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
			if a, err := netip.ParseAddr(addr); err == nil && !p.Contains(a.Unmap()) && !p.Contains(a) {
				t.Fatalf("%q: prefix %v does not hold %v", s, p, a)
			}
		}
	})
}
