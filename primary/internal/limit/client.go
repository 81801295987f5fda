package limit

import (
	"net/http"
	"net/netip"
	"strings"
)

// Behind a load balancer every request comes from the balancer's address:
// keyed on the socket's peer, all clients would share one bucket, and one
// client could lock every other out of logging in. The balancer says
// whom it speaks for in X-Forwarded-For, appending the address it was
// reached from; what comes before that was written by whoever sent the
// request and proves nothing. So the header is believed only from a
// trusted balancer, and read from the right: each trusted hop is skipped,
// and the first address that is not a balancer of ours is the client.

// ClientKey is the bucket key of the client a request came from: its
// address, or for IPv6 its /64, which one subscriber usually has whole
// (keying single IPv6 addresses would give each client 2^64 buckets).
// When the socket's peer is in trusted, the client is read from
// X-Forwarded-For (see ClientAddr).
func ClientKey(r *http.Request, trusted []netip.Prefix) string {
	a, ok := ClientAddr(r, trusted)
	if !ok {
		return r.RemoteAddr // not an IP peer (a test's, a Unix socket's): one bucket for it
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// ClientAddr is the address a request came from: the socket's peer, or,
// when that peer is a trusted balancer, the rightmost address of
// X-Forwarded-For that is not a trusted balancer. Garbage in the header
// stops the walk at the last address read that was trusted (what a
// trusted hop wrote is all that can be believed); a header of trusted
// addresses only gives its leftmost. Addresses come without zone, and an
// IPv4-mapped IPv6 address as its IPv4 address. ok is false when the peer
// is no IP address.
func ClientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	addr, ok := peerAddr(r)
	if !ok {
		return netip.Addr{}, false
	}
	if !inPrefixes(trusted, addr) {
		return addr, true
	}
	// Several header lines are one list, in order (RFC 9110 section 5.3).
	lines := r.Header.Values("X-Forwarded-For")
	for l := len(lines) - 1; l >= 0; l-- {
		xff := lines[l]
		for xff != "" {
			i := strings.LastIndexByte(xff, ',')
			part := strings.Trim(xff[i+1:], " \t")
			xff = xff[:max(i, 0)]
			if part == "" {
				continue
			}
			a, err := netip.ParseAddr(part)
			if err != nil {
				return addr, true
			}
			addr = a.Unmap().WithZone("")
			if !inPrefixes(trusted, addr) {
				return addr, true
			}
		}
	}
	return addr, true
}

// PeerTrusted reports whether the socket's peer of r is one of the trusted
// balancers: the test ClientAddr makes before it believes
// X-Forwarded-For, for the other headers only a balancer of ours may set
// (X-Forwarded-Proto). A peer that is no IP address is not trusted.
func PeerTrusted(r *http.Request, trusted []netip.Prefix) bool {
	addr, ok := peerAddr(r)
	return ok && inPrefixes(trusted, addr)
}

// peerAddr is the socket's peer, unmapped and without zone, as trusted
// prefixes are matched; ok is false when the peer is no IP address.
func peerAddr(r *http.Request) (netip.Addr, bool) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return peer.Addr().Unmap().WithZone(""), true
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
