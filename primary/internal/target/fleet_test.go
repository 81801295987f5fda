package target

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzParseFleetHosts reads -fleet-hosts (SHORTFLEET_FLEET_HOSTS): each
// item gives one host, already canonical, and a link to it (on any port)
// is refused as a loop.
func FuzzParseFleetHosts(f *testing.F) {
	for _, s := range []string{"", "127.0.0.11,127.0.0.12", "http://127.0.0.4:8080", "127.0.0.11:8080, [::1]:9090", "LB.Example.", "0x7f.1",
		"[::ffff:192.0.2.5]", "http://", "a..b", "example.123", "bücher.example", "http://[fe80::1%25eth0]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hosts, err := ParseFleetHosts(split(s))
		if err != nil {
			return
		}
		if len(hosts) != len(split(s)) {
			t.Fatalf("%q: %d hosts from %d items", s, len(hosts), len(split(s)))
		}
		p := &Policy{FleetHosts: hosts}
		for _, h := range hosts {
			if c, err := CanonicalHost(h); err != nil || c != h {
				t.Fatalf("%q: host %q is not canonical (%q, %v)", s, h, c, err)
			}
			u := "http://" + h + ":8080/abc"
			if strings.Contains(h, ":") {
				u = "http://[" + h + "]:8080/abc"
			}
			if _, err := Normalize(u); err != nil {
				continue // a host no URL can name
			}
			if _, err := p.Check(u); err == nil || !strings.Contains(err.Error(), "would loop") {
				t.Fatalf("%q: a link to %s: %v, want refused as a loop", s, u, err)
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

// TestOwnHosts: a listen address is its own host; listening on every
// address gives the machine's addresses without loopback, so that a fleet
// on real addresses does not refuse loopback targets as if it ran there.
func TestOwnHosts(t *testing.T) {
	if got := OwnHosts("127.0.0.2:8000"); len(got) != 1 || got[0] != "127.0.0.2" {
		t.Errorf("OwnHosts(127.0.0.2:8000) = %v", got)
	}
	for _, listen := range []string{":8000", "0.0.0.0:8000", "[::]:8000"} {
		for _, h := range OwnHosts(listen) {
			if a, err := netip.ParseAddr(h); err != nil || a.IsLoopback() {
				t.Errorf("OwnHosts(%s) holds %q", listen, h)
			}
		}
		p := &Policy{ShortHosts: []string{"s.example.com"}, FleetHosts: OwnHosts(listen)}
		if _, err := p.Check("http://127.0.0.1:3000/"); err != nil {
			t.Errorf("listening on %s, a link to 127.0.0.1 is refused: %v", listen, err)
		}
	}
}
