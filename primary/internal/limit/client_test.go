package limit

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

var balancers = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ba1::/48")}

func request(peer string, xff ...string) *http.Request {
	r := &http.Request{RemoteAddr: peer, Header: http.Header{}}
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return r
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no balancer", "192.0.2.1:4242", nil, "192.0.2.1"},
		{"a stranger's header is ignored", "192.0.2.1:4242", []string{"203.0.113.5"}, "192.0.2.1"},
		{"through a balancer", "198.51.100.7:4242", []string{"203.0.113.5"}, "203.0.113.5"},
		{"a forged left part is ignored", "198.51.100.7:4242", []string{"1.2.3.4, 203.0.113.5"}, "203.0.113.5"},
		{"two balancers", "198.51.100.7:4242", []string{"203.0.113.5, 10.1.2.3"}, "203.0.113.5"},
		{"header lines in order", "198.51.100.7:4242", []string{"1.2.3.4, 203.0.113.5", "10.1.2.3"}, "203.0.113.5"},
		{"empty items", "198.51.100.7:4242", []string{" , 203.0.113.5 ,, "}, "203.0.113.5"},
		{"garbage stops at the last trusted hop", "198.51.100.7:4242", []string{"203.0.113.5, garbage, 10.1.2.3"}, "10.1.2.3"},
		{"garbage on the right", "198.51.100.7:4242", []string{"203.0.113.5, garbage"}, "198.51.100.7"},
		{"no header", "198.51.100.7:4242", nil, "198.51.100.7"},
		{"balancers only", "198.51.100.7:4242", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"an IPv4-mapped client", "198.51.100.7:4242", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"an IPv4-mapped peer", "[::ffff:198.51.100.7]:4242", []string{"203.0.113.5"}, "203.0.113.5"},
		{"an IPv6 client is its /64", "198.51.100.7:4242", []string{"2001:db8:1:2:aaaa::1"}, "2001:db8:1:2::/64"},
		{"an IPv6 peer is its /64", "[2001:db8:1:2::99]:4242", nil, "2001:db8:1:2::/64"},
		{"an IPv6 balancer", "[2001:db8:ba1::4]:4242", []string{"2001:db8:7::1"}, "2001:db8:7::/64"},
		{"a zone is dropped", "198.51.100.7:4242", []string{"fe80::1%eth0"}, "fe80::/64"},
		{"not an IP peer", "@", nil, "@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClientKey(request(tc.peer, tc.xff...), balancers); got != tc.want {
				t.Fatalf("peer %s, X-Forwarded-For %q: %s, want %s", tc.peer, tc.xff, got, tc.want)
			}
		})
	}
}

// TestPeerTrusted: the socket's peer, matched as ClientAddr matches it
// (unmapped, without zone), never a header.
func TestPeerTrusted(t *testing.T) {
	for _, tc := range []struct {
		peer string
		xff  []string
		want bool
	}{
		{"198.51.100.7:4242", nil, true},
		{"[::ffff:198.51.100.7]:4242", nil, true},
		{"[2001:db8:ba1::4]:4242", nil, true},
		{"[fe80::1%eth0]:4242", nil, false},
		{"192.0.2.1:4242", nil, false},
		{"192.0.2.1:4242", []string{"198.51.100.7"}, false}, // a header names no peer
		{"198.51.100.7", nil, false},                        // no port: not what net/http gives
		{"@", nil, false},
		{"", nil, false},
	} {
		if got := PeerTrusted(request(tc.peer, tc.xff...), balancers); got != tc.want {
			t.Errorf("peer %q, X-Forwarded-For %q: %v, want %v", tc.peer, tc.xff, got, tc.want)
		}
	}
	if PeerTrusted(request("198.51.100.7:4242"), nil) {
		t.Error("trusted with no balancers configured")
	}
}

// TestLoginBehindBalancer: behind a balancer, one client spending its
// log-in attempts leaves the others theirs, and a stranger cannot make
// itself many clients by writing the header.
func TestLoginBehindBalancer(t *testing.T) {
	l := Limits{LoginPerAddr: hourly(2), TrustedProxies: balancers}
	login := func(peer, xff, email string) bool {
		return l.Login(l.Client(request(peer, xff)), email) == nil
	}
	for i, want := range []bool{true, true, false} {
		if got := login("198.51.100.7:1", "203.0.113.5", "a@example.com"); got != want {
			t.Fatalf("attempt %d of 203.0.113.5: allowed %v, want %v", i+1, got, want)
		}
	}
	if !login("198.51.100.7:1", "203.0.113.6", "b@example.com") {
		t.Fatal("another client behind the balancer was locked out")
	}
	for i, want := range []bool{true, true, false} {
		if got := login("192.0.2.1:1", "203.0.113."+strconv.Itoa(7+i), "c@example.com"); got != want {
			t.Fatalf("attempt %d of a stranger writing X-Forwarded-For: allowed %v, want %v", i+1, got, want)
		}
	}
}

// FuzzClientKey checks the X-Forwarded-For walk against a plain reading of
// its rule, on the header as net/http would hand it over (any number of
// lines): from the right, skip the trusted balancers; the first untrusted
// address is the client; garbage stops the walk at the last trusted
// address; with nothing untrusted, the leftmost trusted one. An IPv6
// client is keyed by its /64; a stranger's header changes nothing.
func FuzzClientKey(f *testing.F) {
	for _, s := range []string{"", "203.0.113.5", "203.0.113.5, 10.1.2.3", "1.2.3.4, 203.0.113.5", "garbage, 203.0.113.5",
		"203.0.113.5, garbage", "2001:db8::1", "::ffff:203.0.113.9", " , ,", "10.0.0.1,10.0.0.2", "fe80::1%eth0", "\xff",
		"203.0.113.5\n10.1.2.3", "2001:db8:ba1::9, 2001:db8:1:2::3", "\t203.0.113.5\t"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
		f.Add(s, uint8(2))
	}
	peers := []string{"192.0.2.1:4242", "198.51.100.7:4242", "[2001:db8:ba1::4]:4242"}
	f.Fuzz(func(t *testing.T, xff string, peer uint8) {
		p := peers[int(peer)%len(peers)]
		r := request(p, strings.Split(xff, "\n")...)
		got := ClientKey(r, balancers)

		want := netip.MustParseAddrPort(p).Addr()
		if inPrefixes(balancers, want) {
			var items []string
			for _, line := range r.Header.Values("X-Forwarded-For") {
				items = append(items, strings.Split(line, ",")...)
			}
			for i := len(items) - 1; i >= 0; i-- {
				s := strings.Trim(items[i], " \t")
				if s == "" {
					continue
				}
				a, err := netip.ParseAddr(s)
				if err != nil {
					break
				}
				want = a.Unmap().WithZone("")
				if !inPrefixes(balancers, want) {
					break
				}
			}
		}
		wantKey := want.String()
		if want.Is6() {
			wantKey = netip.PrefixFrom(want, 64).Masked().String()
		}
		if got != wantKey {
			t.Fatalf("X-Forwarded-For %q from %s: key %s, want %s", xff, p, got, wantKey)
		}
		if strings.ContainsAny(got, "%, \t") {
			t.Fatalf("X-Forwarded-For %q from %s: key %q holds a zone or separator", xff, p, got)
		}
	})
}
