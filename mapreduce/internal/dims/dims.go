// Package dims turns the raw strings a proxy logs into the dimensions the
// stats count (DESIGN.md decision 7): browser, OS, device type and bot or
// not from the user agent (ua-parser's regexes and its crawler list),
// country from the client address (a MaxMind-format database), referrer
// host, primary language of Accept-Language, and a salted visitor hash for
// the unique-visitor sketches. Raw addresses go no further than this
// package: out come only dimension values and hashes.
//
// Parsing is slow and values repeat, so each Classifier caches what it has
// seen. A Classifier is used by one goroutine; Shared, made once, is safe
// for all of them.
package dims

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/ua-parser/uap-go/uaparser"
	"golang.org/x/text/language"
)

// Values for what could not be told.
const (
	Direct         = "(direct)" // no referrer
	NoLanguage     = "(none)"   // no usable Accept-Language
	UnknownCountry = "--"       // no GeoIP database, or an address it does not know
)

// Device types.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
	DeviceOther   = "other"
)

// Config configures classification.
type Config struct {
	// GeoIPPath is a MaxMind-format database (GeoLite2-Country, say);
	// empty leaves every country unknown.
	GeoIPPath string
	// Salt keys the visitor hash. It must be secret and must not change:
	// sketches of different salts do not merge meaningfully.
	Salt []byte
	// TruncateIP drops the host part of addresses (/24, /48) before they
	// are hashed into visitors.
	TruncateIP bool
}

// Shared holds what every Classifier uses: the parsers and the database.
type Shared struct {
	cfg Config
	ua  *uaparser.Parser
	geo *maxminddb.Reader
}

// NewShared loads the user-agent regexes and opens the GeoIP database.
func NewShared(cfg Config) (*Shared, error) {
	if len(cfg.Salt) < 16 {
		return nil, fmt.Errorf("visitor salt has %d bytes, need at least 16", len(cfg.Salt))
	}
	ua, err := uaparser.New()
	if err != nil {
		return nil, fmt.Errorf("load user-agent regexes: %w", err)
	}
	s := &Shared{cfg: cfg, ua: ua}
	if cfg.GeoIPPath != "" {
		if s.geo, err = maxminddb.Open(cfg.GeoIPPath); err != nil {
			return nil, fmt.Errorf("open GeoIP database: %w", err)
		}
	}
	return s, nil
}

// Close closes the GeoIP database.
func (s *Shared) Close() error {
	if s.geo != nil {
		return s.geo.Close()
	}
	return nil
}

// UA is what a user agent string tells.
type UA struct {
	Browser, OS, Device string
	Bot                 bool
}

// maxCache bounds each cache; a full cache is emptied and refilled.
const maxCache = 1 << 17

// Classifier classifies records for one goroutine, caching by input.
type Classifier struct {
	s     *Shared
	ua    map[string]UA
	ref   map[string]string
	lang  map[string]string
	geo   map[netip.Prefix]string
	hashb []byte
}

// NewClassifier returns a Classifier with empty caches.
func (s *Shared) NewClassifier() *Classifier {
	return &Classifier{s: s, ua: map[string]UA{}, ref: map[string]string{}, lang: map[string]string{}, geo: map[netip.Prefix]string{}}
}

func put[K comparable, V any](m map[K]V, k K, v V) {
	if len(m) >= maxCache {
		clear(m)
	}
	m[k] = v
}

// UserAgent classifies a user agent string.
func (c *Classifier) UserAgent(s string) UA {
	if u, ok := c.ua[s]; ok {
		return u
	}
	u := c.parseUA(s)
	put(c.ua, strings.Clone(s), u)
	return u
}

func (c *Classifier) parseUA(s string) UA {
	if strings.TrimSpace(s) == "" {
		return UA{Browser: "(none)", OS: "(none)", Device: DeviceBot, Bot: true}
	}
	cl := c.s.ua.Parse(s)
	u := UA{Browser: cl.UserAgent.Family, OS: cl.Os.Family}
	dev := cl.Device.Family
	switch {
	case dev == "Spider":
		u.Device, u.Bot = DeviceBot, true
	case strings.Contains(dev, "iPad") || strings.Contains(strings.ToLower(dev), "tablet") || strings.Contains(dev, "Kindle"):
		u.Device = DeviceTablet
	case u.OS == "Android" && !strings.Contains(s, "Mobile"):
		u.Device = DeviceTablet
	case u.OS == "iOS" || u.OS == "Android" || strings.Contains(s, "Mobile"):
		u.Device = DeviceMobile
	case u.OS == "Windows" || u.OS == "Mac OS X" || u.OS == "macOS" || u.OS == "Linux" || u.OS == "Ubuntu" ||
		u.OS == "Chrome OS" || u.OS == "Fedora" || u.OS == "FreeBSD":
		u.Device = DeviceDesktop
	default:
		u.Device = DeviceOther
	}
	return u
}

// ReferrerHost returns a referrer's host, lower-cased, or Direct.
func (c *Classifier) ReferrerHost(s string) string {
	if s == "" {
		return Direct
	}
	if h, ok := c.ref[s]; ok {
		return h
	}
	h := referrerHost(s)
	put(c.ref, strings.Clone(s), h)
	return h
}

func referrerHost(s string) string {
	rest := s
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	} else if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") {
		if i := strings.IndexByte(rest, ']'); i > 0 {
			rest = rest[:i+1]
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	rest = strings.TrimSuffix(strings.ToLower(rest), ".")
	if rest == "" || len(rest) > 253 {
		return Direct
	}
	return rest
}

// Language returns the primary language of the most preferred tag of an
// Accept-Language header ("de" for "de-CH,de;q=0.9"), or NoLanguage.
func (c *Classifier) Language(s string) string {
	if s == "" {
		return NoLanguage
	}
	if l, ok := c.lang[s]; ok {
		return l
	}
	l := NoLanguage
	if tags, _, err := language.ParseAcceptLanguage(s); err == nil && len(tags) > 0 {
		if base, conf := tags[0].Base(); conf != language.No && base.String() != "und" && base.String() != "mul" {
			l = base.String()
		}
	}
	put(c.lang, strings.Clone(s), l)
	return l
}

// prefixOf is the network an address is classified and, with TruncateIP,
// counted by: /24 for IPv4, /48 for IPv6.
func prefixOf(a netip.Addr) netip.Prefix {
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// Country returns the ISO country code of a client address, or
// UnknownCountry. Countries are looked up per /24 (/48): no country is
// split finer.
func (c *Classifier) Country(addr string) string {
	if c.s.geo == nil {
		return UnknownCountry
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return UnknownCountry
	}
	p := prefixOf(a.Unmap())
	if cc, ok := c.geo[p]; ok {
		return cc
	}
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
	}
	cc := UnknownCountry
	if err := c.s.geo.Lookup(p.Addr()).Decode(&rec); err == nil && rec.Country.ISOCode != "" {
		cc = rec.Country.ISOCode
	}
	put(c.geo, p, cc)
	return cc
}

// Visitor hashes what identifies a visitor, the client address (truncated
// if configured) and the user agent, keyed by the secret salt.
func (c *Classifier) Visitor(addr, ua string) uint64 {
	b := append(c.hashb[:0], c.s.cfg.Salt...)
	if c.s.cfg.TruncateIP {
		if a, err := netip.ParseAddr(addr); err == nil {
			b = prefixOf(a.Unmap()).AppendTo(b)
		} else {
			b = append(b, addr...)
		}
	} else {
		b = append(b, addr...)
	}
	b = append(b, 0)
	b = append(b, ua...)
	c.hashb = b
	return xxhash.Sum64(b)
}
