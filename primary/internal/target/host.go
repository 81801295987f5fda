package target

import (
	"fmt"
	"net/netip"
	"strings"
)

// A browser does not read a URL's host as written: the WHATWG URL
// standard (https://url.spec.whatwg.org/#host-parsing), which every
// mainstream browser follows, maps it through UTS 46 (so "１２７。0。0。1"
// is "127.0.0.1"), and reads a host whose last label is a number as an
// IPv4 address in any of its old forms: "127.1", "2130706433",
// "0x7f.0.0.1", "0177.0.0.1". A check that compares hosts as text is
// walked around by every one of them, so hosts are compared here in the
// form a browser would connect to.

// endsInNumber is the standard's "ends in a number" checker: whether a
// host (already mapped to ASCII) must be read as an IPv4 address. A host
// for which it is true and that is not a valid address is no host at all:
// a browser refuses the URL.
func endsInNumber(host string) bool {
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" {
		if len(parts) == 1 {
			return false
		}
		parts = parts[:len(parts)-1]
	}
	last := parts[len(parts)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// tooBig stands for any number over 2^32 - 1, which no part of an
// address may be; parts can be any number of digits long.
const tooBig = 1 << 32

// parseIPv4Number is the standard's IPv4 number parser: decimal, octal
// with a leading 0, hexadecimal with 0x; "0x" alone is 0. Numbers over
// 2^32 - 1 come back as tooBig.
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
	case len(s) >= 2 && s[0] == '0':
		base, s = 8, s[1:]
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		if v = v*base + d; v > tooBig {
			v = tooBig // saturate: the digits left can only be checked, not counted
		}
	}
	return v, true
}

// parseIPv4 is the standard's IPv4 parser, for a host endsInNumber
// chose: one to four parts, all but the last at most 255, the last
// filling the bytes left ("127.1" is 127.0.0.1, "2130706433" too).
func parseIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" && len(parts) > 1 {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, ok := parseIPv4Number(p)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		if n >= 1<<(8*(5-len(parts))) {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// canonicalHost reads a URL's host as url.Hostname gives it (an IPv6
// literal without its brackets) the way a browser does, and returns it
// as it goes in a URL: an IPv6 address in brackets, an IPv4 address in
// dotted decimal, a domain name lower-case in punycode (its trailing dot,
// if any, kept: it is the same host, and CanonicalHost drops it).
func canonicalHost(host string) (string, netip.Addr, error) {
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return "", netip.Addr{}, fmt.Errorf("host [%s] is not an IPv6 address", host)
		}
		if a.Zone() != "" {
			// Browsers refuse zones in URLs; a zone would only name
			// an interface of the machine that follows the link.
			return "", netip.Addr{}, fmt.Errorf("host [%s] has an IPv6 zone", host)
		}
		return "[" + a.String() + "]", a, nil
	}
	ascii, err := profile.ToASCII(host)
	if err == nil {
		// A host that maps to punycode that does not map back to
		// itself is one a browser would not reach either.
		var again string
		again, err = profile.ToASCII(ascii)
		if err == nil && again != ascii {
			err = fmt.Errorf("unstable")
		}
	}
	if err != nil || ascii == "" {
		return "", netip.Addr{}, fmt.Errorf("host %q is not a valid domain name", host)
	}
	if name := strings.TrimSuffix(ascii, "."); name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		// No host has an empty label; one trailing dot is the root.
		// "127.0.0.1.." is no domain name, and systems differ on
		// whether it is an address.
		return "", netip.Addr{}, fmt.Errorf("host %q has an empty label", host)
	}
	if endsInNumber(ascii) {
		a, ok := parseIPv4(ascii)
		if !ok {
			return "", netip.Addr{}, fmt.Errorf("host %q is neither a domain name nor an IPv4 address", host)
		}
		return a.String(), a, nil
	}
	return ascii, netip.Addr{}, nil
}

// CanonicalHost returns the host a browser connects to for host (a URL's
// host, without port; an IPv6 literal with or without its brackets), in
// the form hosts are compared in: an IP address as netip prints it, an
// IPv4-mapped IPv6 address as the IPv4 address it reaches; a domain name
// lower-case, in punycode, without a trailing dot.
func CanonicalHost(host string) (string, error) {
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	h, a, err := canonicalHost(host)
	if err != nil {
		return "", err
	}
	if a.IsValid() {
		return a.Unmap().String(), nil
	}
	return strings.TrimRight(h, "."), nil
}

// isLoopback reports whether a canonical host is this machine, whichever
// machine follows the link: a loopback address, the unspecified address
// (connecting to 0.0.0.0 or :: reaches the machine itself), or localhost
// and its subdomains, which browsers resolve to loopback without asking
// DNS.
func isLoopback(host string) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.IsLoopback() || a.IsUnspecified()
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}
