// Package target validates and normalises the URLs links point to.
package target

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxLen is the longest target accepted, in bytes after normalisation:
// what every mainstream browser and proxy handles.
const MaxLen = 2048

// Error says what is wrong with a target, in words for the user.
type Error struct{ Reason string }

func (e *Error) Error() string { return "invalid target URL: " + e.Reason }

func invalid(format string, args ...any) error { return &Error{Reason: fmt.Sprintf(format, args...)} }

// IsInvalid reports whether err is a validation error.
func IsInvalid(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

var profile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false))

// Normalize checks that raw is an absolute http or https URL with a host,
// within MaxLen, without credentials or control characters, and returns it
// normalised: scheme and host lower-cased, international host names in
// punycode.
func Normalize(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", invalid("it is empty")
	}
	if len(raw) > MaxLen {
		return "", invalid("it is %d bytes long; the limit is %d", len(raw), MaxLen)
	}
	if !utf8.ValidString(raw) {
		return "", invalid("it is not valid UTF-8 text")
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f || r == ' ' {
			return "", invalid("it contains a space or control character")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", invalid("it does not parse as a URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		u.Scheme = strings.ToLower(u.Scheme)
	case "":
		return "", invalid("it has no scheme; start it with https:// or http://")
	default:
		return "", invalid("scheme %q is not allowed; only http and https are", u.Scheme)
	}
	if u.Opaque != "" {
		return "", invalid("it has no host; write it as %s://host/...", u.Scheme)
	}
	if u.User != nil {
		return "", invalid("it contains a user name or password")
	}
	host := u.Hostname()
	if host == "" {
		return "", invalid("it has no host")
	}
	port := u.Port()
	// The host as a browser reads it, so that what is stored, shown and
	// checked is where a click goes: "http://0x7f.1/" is stored as
	// "http://127.0.0.1/".
	host, _, err = canonicalHost(host)
	if err != nil {
		return "", invalid("%s", err.Error())
	}
	if port != "" {
		host += ":" + port
	} else if strings.HasSuffix(u.Host, ":") {
		return "", invalid("it has an empty port")
	}
	u.Host = host
	out := u.String()
	if len(out) > MaxLen {
		return "", invalid("it is %d bytes long once normalised; the limit is %d", len(out), MaxLen)
	}
	return out, nil
}

// Policy is what a deployment refuses beyond a malformed URL: links to its
// own hosts (a redirect loop, or a link into the fleet's own network) and
// to blocklisted domains. Hosts are compared as a browser reads them (see
// CanonicalHost), so "http://127.1/" is a link to 127.0.0.1.
type Policy struct {
	// ShortHosts are the hosts short links are served on; links to them
	// and to their subdomains (which a wildcard DNS record may send to
	// the same balancer) are refused.
	ShortHosts []string
	// FleetHosts are the other hosts the fleet serves on: the balancers,
	// each proxy, the primary app itself. Links to them are refused.
	FleetHosts []string
	// Blocked are domains whose links are refused, with their subdomains.
	Blocked map[string]bool
}

// canonicalAll returns the canonical form of each host; a host that is
// none (CanonicalHost refuses it) is kept lower-case, without trailing
// dots, which is what any URL naming it would come to.
func canonicalAll(hosts []string) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		c, err := CanonicalHost(h)
		if err != nil {
			c = strings.TrimRight(strings.ToLower(h), ".")
		}
		out[i] = c
	}
	return out
}

// Check normalises raw and applies the policy.
func (p *Policy) Check(raw string) (string, error) {
	out, err := Normalize(raw)
	if err != nil {
		return "", err
	}
	u, _ := url.Parse(out)
	// Normalize has put the host in the form a browser reads it in;
	// "evil.example." is the same host as "evil.example" to DNS and to
	// browsers: the trailing dot must not get a link past the checks.
	host, err := CanonicalHost(u.Hostname())
	if err != nil {
		return "", invalid("%s", err.Error())
	}
	_, notAddr := netip.ParseAddr(host)
	isDomain := notAddr != nil
	shorts, fleet := canonicalAll(p.ShortHosts), canonicalAll(p.FleetHosts)
	for _, h := range shorts {
		if host == h || (isDomain && strings.HasSuffix(host, "."+h)) {
			return "", invalid("it points at this shortener (%s), which would loop", h)
		}
	}
	if slices.Contains(fleet, host) {
		return "", invalid("it points at a host of this shortener (%s), which would loop", host)
	}
	// Where the fleet itself runs on loopback (a development or test
	// fleet), every loopback host may be one of its servers: 127.0.0.0/8
	// is all this machine, and localhost, its subdomains, ::1, 0.0.0.0 and
	// :: reach it too. So a loopback fleet refuses every loopback target.
	// A fleet on real addresses allows them: such a link sends whoever
	// follows it to their own machine, never to the fleet.
	if isLoopback(host) && (slices.ContainsFunc(shorts, isLoopback) || slices.ContainsFunc(fleet, isLoopback)) {
		return "", invalid("it points at this machine (%s), where this shortener runs, which would loop", host)
	}
	for d := host; d != ""; {
		if p.Blocked[d] {
			return "", invalid("links to %s are not allowed here", d)
		}
		i := strings.IndexByte(d, '.')
		if i < 0 || !isDomain { // an address has no parent domains
			break
		}
		d = d[i+1:]
	}
	return out, nil
}

// LoadBlocklist reads a blocklist file: one domain a line, # comments.
func LoadBlocklist(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read blocklist: %w", err)
	}
	return ParseBlocklist(string(data)), nil
}

// ParseBlocklist reads a blocklist's text: domains separated by spaces or
// lines, # comments; domains lower-cased, without their trailing dot,
// international ones in punycode; IP addresses as CanonicalHost gives
// them. A line holding several words blocks each (so a hosts-file line
// "0.0.0.0 evil.example" blocks evil.example), where keeping the line
// whole would block nothing at all.
func ParseBlocklist(data string) map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(data, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, word := range strings.Fields(line) {
			if d := strings.Trim(strings.ToLower(word), "."); d != "" {
				// As Check compares hosts: "127.1" blocks 127.0.0.1.
				if c, err := CanonicalHost(d); err == nil {
					d = c
				} else if ascii, err := profile.ToASCII(d); err == nil {
					d = ascii
				}
				m[d] = true
			}
		}
	}
	return m
}

// ValidAlias reports what is wrong with a custom alias, if anything:
// 3 to 64 of [A-Za-z0-9_-], and not 7 letters and digits, which is the shape
// of a code.
func ValidAlias(a string) error {
	if len(a) < 3 || len(a) > 64 {
		return &Error{Reason: "an alias is 3 to 64 characters"}
	}
	alnum := true
	for _, c := range a {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_':
			alnum = false
		default:
			return &Error{Reason: fmt.Sprintf("an alias may hold letters, digits, - and _ only, not %q", c)}
		}
	}
	if alnum && len(a) == 7 {
		return &Error{Reason: "a 7-character alias of letters and digits looks like a code; add a - or _ or change its length"}
	}
	return nil
}
