package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"shortfleet/primary/internal/target"
)

// items splits a comma-separated flag value, dropping empty items.
func items(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseTrustedProxies reads -trusted-proxies: addresses or CIDRs of the
// load balancers whose X-Forwarded-For is believed. An IPv4-mapped IPv6
// prefix such as ::ffff:10.0.0.0/104 is read as the IPv4 prefix it maps
// (10.0.0.0/8), since peers are compared unmapped: left mapped, it would
// match no peer at all.
func parseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range items(s) {
		if p, err := netip.ParsePrefix(f); err == nil {
			a := p.Addr()
			if a.Is4In6() {
				if p.Bits() < 96 {
					return nil, fmt.Errorf("-trusted-proxies: %q reaches past the IPv4-mapped range ::ffff:0:0/96", f)
				}
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
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
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// parseFleetHosts reads -fleet-hosts: the hosts the fleet serves on
// besides the short base's (each proxy, each balancer), as hosts,
// host:port or URLs, which links may not point to. It returns them as
// target.CanonicalHost does.
func parseFleetHosts(s string) ([]string, error) {
	var out []string
	for _, f := range items(s) {
		host := f
		if strings.Contains(f, "://") {
			u, err := url.Parse(f)
			if err != nil || u.Hostname() == "" {
				return nil, fmt.Errorf("-fleet-hosts: %q is not a URL with a host", f)
			}
			host = u.Hostname()
		} else if h, _, err := net.SplitHostPort(f); err == nil {
			host = h
		}
		c, err := target.CanonicalHost(host)
		if err != nil {
			return nil, fmt.Errorf("-fleet-hosts: %q: %w", f, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// ownHosts are the primary app's own hosts, which links may not point to
// either: the address it listens on, or, listening on every address,
// each address of the machine.
func ownHosts(listen string) []string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil
	}
	if a, err := netip.ParseAddr(host); host != "" && (err != nil || !a.IsUnspecified()) {
		return []string{host}
	}
	addrs, _ := net.InterfaceAddrs()
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP.String())
		}
	}
	return out
}
