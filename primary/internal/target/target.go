// Package target validates and normalises the URLs links point to.
package target

import (
	"errors"
	"fmt"
	"net/url"
	"os"
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
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + strings.ToLower(host) + "]"
	} else {
		ascii, err := profile.ToASCII(host)
		if err == nil {
			// A host that maps to punycode that does not map back to
			// itself is one a browser would not reach either.
			var again string
			again, err = profile.ToASCII(ascii)
			if err == nil && again != ascii {
				err = errors.New("unstable")
			}
		}
		if err != nil || ascii == "" {
			return "", invalid("host %q is not a valid domain name", host)
		}
		host = ascii
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
// own short domains (a redirect loop) and to blocklisted domains.
type Policy struct {
	// ShortHosts are the hosts short links are served on.
	ShortHosts []string
	// Blocked are domains whose links are refused, with their subdomains.
	Blocked map[string]bool
}

// Check normalises raw and applies the policy.
func (p *Policy) Check(raw string) (string, error) {
	out, err := Normalize(raw)
	if err != nil {
		return "", err
	}
	u, _ := url.Parse(out)
	// "evil.example." is the same host as "evil.example" to DNS and to
	// browsers: the trailing dot must not get a link past the checks.
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	for _, h := range p.ShortHosts {
		if strings.EqualFold(host, h) {
			return "", invalid("it points at this shortener (%s), which would loop", h)
		}
	}
	for d := host; d != ""; {
		if p.Blocked[d] {
			return "", invalid("links to %s are not allowed here", d)
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
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
// international ones in punycode. A line holding several words blocks each
// (so a hosts-file line "0.0.0.0 evil.example" blocks evil.example), where
// keeping the line whole would block nothing at all.
func ParseBlocklist(data string) map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(data, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, word := range strings.Fields(line) {
			if d := strings.Trim(strings.ToLower(word), "."); d != "" {
				if ascii, err := profile.ToASCII(d); err == nil {
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
