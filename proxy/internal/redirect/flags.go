package redirect

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseTrustedProxies reads -trusted-proxies (SHORTFLEET_TRUSTED_PROXIES):
// addresses or CIDRs of the load balancers whose PROXY header,
// X-Forwarded-For and X-Client-Port are believed, comma-separated, as
// Config.TrustedProxies and ProxyProtocolListener take them.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			// Peers are unmapped before they are matched (a dual-stack
			// socket reports an IPv4 client as ::ffff:a.b.c.d), so an
			// IPv4-mapped prefix would hold none of them: keep the IPv4
			// prefix it names. One shorter than /96 is part IPv4, part
			// IPv6, and no one means that.
			if p.Addr().Is4In6() {
				if p.Bits() < 96 {
					return nil, fmt.Errorf("-trusted-proxies: %q mixes IPv4-mapped and IPv6 addresses; give the IPv4 CIDR", f)
				}
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("-trusted-proxies: %q is neither an address nor a CIDR", f)
		}
		if a.Zone() != "" {
			// A prefix holds no zone, and a zoned peer is in no prefix.
			return nil, fmt.Errorf("-trusted-proxies: %q has a zone; give the address without it", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// ParseRedactHeaders reads -redact-headers (SHORTFLEET_REDACT_HEADERS):
// header names, comma-separated, as Config.RedactHeaders takes them. A
// name must be an HTTP token (RFC 9110), or no request could carry it;
// the headers the log keeps in columns of their own are refused, since
// the stats read those columns and redacting them would silently do
// nothing.
func ParseRedactHeaders(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		for i := 0; i < len(f); i++ {
			if !isTokenChar(f[i]) {
				return nil, fmt.Errorf("-redact-headers: %q is not a header name", f)
			}
		}
		for _, col := range []string{"Host", "User-Agent", "Referer", "Accept-Language"} {
			if strings.EqualFold(f, col) {
				return nil, fmt.Errorf("-redact-headers: %s is logged in a column of its own, which the stats read; it cannot be redacted", col)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// isTokenChar reports a tchar of RFC 9110 section 5.6.2.
func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
