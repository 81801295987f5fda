package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"shortfleet/primary/internal/target"
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
		got, err := parseTrustedProxies(tc.in)
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
// prefixes, one a non-empty item, none of them IPv4-mapped (peers are
// compared unmapped, so such a prefix would match nothing), each holding
// the address its item names; what it refuses names the flag.
func FuzzParseTrustedProxies(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "10.1.2.3/8, 192.0.2.1", "2001:db8::/32,::ffff:10.0.0.1", " , ,", "garbage",
		"10.0.0.0/33", "1.2.3.4/-1", "fe80::1%eth0", "::ffff:10.0.0.0/104", "::ffff:0:0/95", "::ffff:1.2.3.4/128", "::/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parseTrustedProxies(s)
		if err != nil {
			if !strings.Contains(err.Error(), "-trusted-proxies") {
				t.Fatalf("%q: error %v does not name the flag", s, err)
			}
			return
		}
		its := items(s)
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

// FuzzParseFleetHosts reads -fleet-hosts (SHORTFLEET_FLEET_HOSTS): each
// item gives one host, already canonical, and a link to it (on any port)
// is refused as a loop; what it refuses names the flag.
func FuzzParseFleetHosts(f *testing.F) {
	for _, s := range []string{"", "127.0.0.11,127.0.0.12", "http://127.0.0.4:8080", "127.0.0.11:8080, [::1]:9090", "LB.Example.", "0x7f.1",
		"[::ffff:192.0.2.5]", "http://", "a..b", "example.123", "bücher.example", "http://[fe80::1%25eth0]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hosts, err := parseFleetHosts(s)
		if err != nil {
			if !strings.Contains(err.Error(), "-fleet-hosts") {
				t.Fatalf("%q: error %v does not name the flag", s, err)
			}
			return
		}
		if len(hosts) != len(items(s)) {
			t.Fatalf("%q: %d hosts from %d items", s, len(hosts), len(items(s)))
		}
		p := &target.Policy{FleetHosts: hosts}
		for _, h := range hosts {
			if c, err := target.CanonicalHost(h); err != nil || c != h {
				t.Fatalf("%q: host %q is not canonical (%q, %v)", s, h, c, err)
			}
			u := "http://" + h + ":8080/abc"
			if strings.Contains(h, ":") {
				u = "http://[" + h + "]:8080/abc"
			}
			if _, err := target.Normalize(u); err != nil {
				continue // a host no URL can name
			}
			if _, err := p.Check(u); err == nil || !strings.Contains(err.Error(), "would loop") {
				t.Fatalf("%q: a link to %s: %v, want refused as a loop", s, u, err)
			}
		}
	})
}
