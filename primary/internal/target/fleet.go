package target

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// ParseFleetHosts reads the hosts the fleet serves on besides the short
// base's (each proxy, each balancer; the primary's -fleet-hosts), as hosts,
// host:port or URLs, one an item, which links may not point to. It returns
// them as CanonicalHost does.
func ParseFleetHosts(list []string) ([]string, error) {
	var out []string
	for _, f := range list {
		host := f
		if strings.Contains(f, "://") {
			u, err := url.Parse(f)
			if err != nil || u.Hostname() == "" {
				return nil, fmt.Errorf("%q is not a URL with a host", f)
			}
			host = u.Hostname()
		} else if h, _, err := net.SplitHostPort(f); err == nil {
			host = h
		}
		c, err := CanonicalHost(host)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// OwnHosts are the primary app's own hosts, which links may not point to
// either: the address it listens on, or, listening on every address,
// each address of the machine but its loopback ones. (A visitor's browser
// reads a loopback target as its own machine, not ours; and a loopback
// host among the fleet's would make Check refuse every loopback target,
// the rule meant for a fleet that runs on loopback.)
func OwnHosts(listen string) []string {
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
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
			out = append(out, n.IP.String())
		}
	}
	return out
}
