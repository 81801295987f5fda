package limit

import (
	"fmt"
	"net/netip"
)

// ParseTrustedProxies reads the addresses or CIDRs of the load balancers
// whose X-Forwarded-For is believed (the primary's -trusted-proxies), one
// an item. An IPv4-mapped IPv6
// prefix such as ::ffff:10.0.0.0/104 is read as the IPv4 prefix it maps
// (10.0.0.0/8), since peers are compared unmapped: left mapped, it would
// match no peer at all.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range list {
		if p, err := netip.ParsePrefix(f); err == nil {
			a := p.Addr()
			if a.Is4In6() {
				if p.Bits() < 96 {
					return nil, fmt.Errorf("%q reaches past the IPv4-mapped range ::ffff:0:0/96", f)
				}
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", f)
		}
		if a.Zone() != "" {
			// A prefix holds no zone, and a zoned peer is in no prefix.
			return nil, fmt.Errorf("%q has a zone; give the address without it", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
