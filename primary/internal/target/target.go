// Package target validates and normalises the URLs links point to.
package target

import (
	"errors"
	"fmt"
	"net/url"
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
