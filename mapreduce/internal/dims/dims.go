// Package dims turns the raw strings a proxy logs into the dimensions the
// stats count (README.md decision 7): browser, OS, device type and bot or
// not from the user agent (ua-parser's regexes and its crawler list),
// country from the client address (a MaxMind-format database: MaxMind's
// layout or ip-location-db's, see CountryID), referrer
// host, primary language of Accept-Language, and a salted visitor hash for
// the unique-visitor sketches. Raw addresses go no further than this
// package: out come only dimension values and hashes.
//
// Parsing is slow and values repeat, so each Classifier caches what it has
// seen. A Classifier is used by one goroutine; Shared, made once, is safe
// for all of them.
package dims

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/ua-parser/uap-go/uaparser"
	"golang.org/x/text/language"
)

// Values for what could not be told.
const (
	Direct         = "(direct)"  // no referrer
	BadReferrer    = "(invalid)" // a referrer with no host a browser could have sent
	NoLanguage     = "(none)"    // no usable Accept-Language
	UnknownCountry = "--"        // no GeoIP database, or an address it does not know
)

// Device types.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
	DeviceOther   = "other"
)

// DefaultGeoIPPath is where provisioning/deps.sh and the Ansible
// mapreduce role install the country database (provisioning/settings
// geoip.json: ip-location-db's geo-whois-asn-country, data from the RIRs
// under CC BY 4.0 by the NRO), and so mapreduce's default.
const DefaultGeoIPPath = "/var/lib/shortfleet/geo/geo-whois-asn-country.mmdb"

// Config configures classification.
type Config struct {
	// GeoIPPath is a MaxMind-format database (GeoLite2-Country, or
	// ip-location-db's country database at DefaultGeoIPPath); empty leaves
	// every country unknown.
	GeoIPPath string
	// Salt keys the visitor hash. It must be secret and must not change:
	// sketches of different salts do not merge meaningfully.
	Salt []byte
	// TruncateIP drops the host part of addresses (/24, /48) before they
	// are hashed into visitors.
	TruncateIP bool
}

// Shared holds what every Classifier uses: the parsers, the database, and
// the table of dimension values, so an id means the same value whichever
// classifier gave it.
type Shared struct {
	cfg Config
	ua  *uaparser.Parser
	geo *maxminddb.Reader

	mu    sync.RWMutex
	ids   map[string]ID
	names []string
	gen   uint64
	limit int // Trim's bound on names: maxNames
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
	s := &Shared{cfg: cfg, ua: ua, ids: map[string]ID{}, limit: maxNames}
	if cfg.GeoIPPath != "" {
		if s.geo, err = maxminddb.Open(cfg.GeoIPPath); err != nil {
			if errors.Is(err, fs.ErrNotExist) && cfg.GeoIPPath == DefaultGeoIPPath {
				return nil, fmt.Errorf("open GeoIP database: %w (provisioning/deps.sh installs it; an empty -geoip leaves countries unknown)", err)
			}
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

// UAIDs is a UA with its values as ids of the classifier that made it.
// Kind is the id of the three values together (see KindParts): a click
// counted by kind is one count instead of three.
type UAIDs struct {
	Browser, OS, Device, Kind ID
	Bot                       bool
}

// kindName is the value-table entry that stands for a browser, an OS and
// a device together: a NUL, then their three ids. A value of the same
// bytes would share the entry, which is harmless: an id stands for one
// string, and the string for the same three ids.
func kindName(browser, os, device ID) string {
	var b [13]byte
	binary.LittleEndian.PutUint32(b[1:], uint32(browser))
	binary.LittleEndian.PutUint32(b[5:], uint32(os))
	binary.LittleEndian.PutUint32(b[9:], uint32(device))
	return string(b[:])
}

// KindParts gives back the browser, OS and device ids of a kind's entry
// in the value table; ok is false for any other value.
func KindParts(name string) (browser, os, device ID, ok bool) {
	if len(name) != 13 || name[0] != 0 {
		return 0, 0, 0, false
	}
	b := []byte(name[1:])
	return ID(binary.LittleEndian.Uint32(b)), ID(binary.LittleEndian.Uint32(b[4:])), ID(binary.LittleEndian.Uint32(b[8:])), true
}

// ID names a dimension value within one Classifier: comparing and hashing
// ids is cheaper than strings. Name turns it back.
type ID uint32

// maxCache bounds each cache; a full cache is emptied and refilled.
const maxCache = 1 << 17

// maxNames bounds the value table; see Shared.Trim.
const maxNames = 1 << 20

// Classifier classifies records for one goroutine, caching by input.
type Classifier struct {
	s     *Shared
	ua    map[string]UAIDs
	ref   map[string]ID
	lang  map[string]ID
	geo   *[geoSlots]geoSlot // by network; see CountryID
	geo16 *[1 << 16]ID       // by IPv4 /16, id+1 (0: not known); see CountryID
	rec   map[uintptr]ID     // by the database record a lookup found
	none  ID                 // UnknownCountry
	gen   uint64             // the value table's generation the caches belong to
	hashb []byte
}

// geoSlots is the size of a classifier's country cache by network: a
// direct-mapped table, so a lookup is one probe and no hashing of a
// netip.Prefix, and a miss costs only a database lookup.
const geoSlots = 1 << geoSlotBits

// geoSlot is a network (netKey) and its country's id; key 0 is empty.
type geoSlot struct {
	key uint64
	id  ID
}

// NewClassifier returns a Classifier with empty caches.
func (s *Shared) NewClassifier() *Classifier {
	c := &Classifier{s: s}
	c.reset()
	return c
}

func (c *Classifier) reset() {
	c.ua, c.ref, c.lang = map[string]UAIDs{}, map[string]ID{}, map[string]ID{}
	c.geo, c.geo16, c.rec = new([geoSlots]geoSlot), new([1 << 16]ID), map[uintptr]ID{}
	c.s.mu.RLock()
	c.gen = c.s.gen
	c.s.mu.RUnlock()
	c.none = c.intern(UnknownCountry)
}

// Trim forgets the value table once it has grown past its bound. Ids from
// before a Trim mean nothing after it, so call it only when no id is held:
// between runs.
func (s *Shared) Trim() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) > s.limit {
		s.ids, s.names = map[string]ID{}, nil
		s.gen++
	}
}

// Names is the value table: names[id] is the value id stands for. The
// slice stays valid until the next Trim.
func (s *Shared) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.names
}

// Name is the value an id stands for.
func (s *Shared) Name(id ID) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.names[id]
}

// Name is the value an id stands for.
func (c *Classifier) Name(id ID) string { return c.s.Name(id) }

// ID returns the id of a value, adding it to the table if new. The table
// keeps its own copy of a new value: v may alias a decoder's buffer (a
// referrer host is a substring of the referrer, a parsed user agent's
// family may be one of the user agent), and that buffer is reused for the
// next batch.
func (s *Shared) ID(v string) ID {
	s.mu.RLock()
	id, ok := s.ids[v]
	s.mu.RUnlock()
	if ok {
		return id
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.ids[v]; ok {
		return id
	}
	v = strings.Clone(v)
	id = ID(len(s.names))
	s.names = append(s.names, v)
	s.ids[v] = id
	return id
}

// Check drops the classifier's caches if the value table was trimmed since
// they were filled. Call it before each segment.
func (c *Classifier) Check() {
	c.s.mu.RLock()
	stale := c.gen != c.s.gen
	c.s.mu.RUnlock()
	if stale {
		c.reset()
	}
}

func (c *Classifier) intern(v string) ID { return c.s.ID(v) }

func put[K comparable, V any](m map[K]V, k K, v V) {
	if len(m) >= maxCache {
		clear(m)
	}
	m[k] = v
}

// UserAgentIDs classifies a user agent string.
func (c *Classifier) UserAgentIDs(s string) UAIDs {
	if u, ok := c.ua[s]; ok {
		return u
	}
	u := c.parseUA(s)
	ids := UAIDs{Browser: c.intern(u.Browser), OS: c.intern(u.OS), Device: c.intern(u.Device), Bot: u.Bot}
	ids.Kind = c.intern(kindName(ids.Browser, ids.OS, ids.Device))
	put(c.ua, strings.Clone(s), ids)
	return ids
}

// UserAgent classifies a user agent string.
func (c *Classifier) UserAgent(s string) UA {
	u := c.UserAgentIDs(s)
	return UA{Browser: c.Name(u.Browser), OS: c.Name(u.OS), Device: c.Name(u.Device), Bot: u.Bot}
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
func (c *Classifier) ReferrerHost(s string) string { return c.Name(c.ReferrerHostID(s)) }

// ReferrerHostID is ReferrerHost as an id.
func (c *Classifier) ReferrerHostID(s string) ID {
	if id, ok := c.ref[s]; ok {
		return id
	}
	h := Direct
	if s != "" {
		h = referrerHost(s)
	}
	id := c.intern(h)
	put(c.ref, strings.Clone(s), id)
	return id
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
	if !validHost(rest) {
		return BadReferrer
	}
	return rest
}

// validHost reports whether h looks like a host name (letters, digits,
// dots, hyphens, underscores; UTF-8 for internationalised names) or a
// bracketed IPv6 address, so junk sent as a Referer does not become a
// dimension value.
func validHost(h string) bool {
	if strings.HasPrefix(h, "[") {
		a, err := netip.ParseAddr(strings.TrimSuffix(h[1:], "]"))
		return err == nil && strings.HasSuffix(h, "]") && a.Is6()
	}
	if !utf8.ValidString(h) {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		case r >= 0x80 && unicode.IsPrint(r) && !unicode.IsSpace(r):
		default:
			return false
		}
	}
	return true
}

// Language returns the primary language of the most preferred tag of an
// Accept-Language header ("de" for "de-CH,de;q=0.9"), or NoLanguage.
func (c *Classifier) Language(s string) string { return c.Name(c.LanguageID(s)) }

// LanguageID is Language as an id.
func (c *Classifier) LanguageID(s string) ID {
	if id, ok := c.lang[s]; ok {
		return id
	}
	l := NoLanguage
	if s != "" {
		if tags, _, err := language.ParseAcceptLanguage(s); err == nil && len(tags) > 0 {
			if base, conf := tags[0].Base(); conf != language.No && base.String() != "und" && base.String() != "mul" {
				l = base.String()
			}
		}
	}
	id := c.intern(l)
	put(c.lang, strings.Clone(s), id)
	return id
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
func (c *Classifier) Country(addr string) string { return c.Name(c.CountryID(addr)) }

// CountryID is Country as an id.
func (c *Classifier) CountryID(addr string) ID {
	if c.s.geo == nil {
		return c.none
	}
	a, err := parseAddr(addr)
	if err != nil {
		return c.none
	}
	a = a.Unmap()
	var by16 *ID
	if a.Is4() {
		b := a.As4()
		by16 = &c.geo16[uint16(b[0])<<8|uint16(b[1])]
		if *by16 != 0 {
			return *by16 - 1
		}
	}
	key := netKey(a)
	slot := &c.geo[(key*0x9e3779b97f4a7c15)>>(64-geoSlotBits)]
	if slot.key == key {
		return slot.id
	}
	p := prefixOf(a)
	r := c.s.geo.Lookup(p.Addr())
	id := c.none
	if r.Found() {
		// Many networks share one record (a country): decode each once.
		var ok bool
		if id, ok = c.rec[r.Offset()]; !ok {
			// MaxMind's databases hold {"country": {"iso_code": "FR"}},
			// ip-location-db's (the default) {"country_code": "FR"}.
			var rec struct {
				Country struct {
					ISOCode string `maxminddb:"iso_code"`
				} `maxminddb:"country"`
				CountryCode string `maxminddb:"country_code"`
			}
			id = c.none
			if err := r.Decode(&rec); err == nil {
				switch {
				case rec.Country.ISOCode != "":
					id = c.intern(rec.Country.ISOCode)
				case rec.CountryCode != "":
					id = c.intern(rec.CountryCode)
				}
			}
			put(c.rec, r.Offset(), id)
		}
	}
	*slot = geoSlot{key, id}
	// A database network of a /16 or more, a country's or one it has
	// none for, answers for its whole /16: an address in it then costs no
	// prefix, hash or lookup. Clicks from many networks mostly missed the
	// cache by /24 alone (country lookup was 13% of the aggregation's CPU
	// in aggregate-cpu-fold-after.pprof, bench/results/profiles-23).
	if by16 != nil && r.Err() == nil {
		if n := r.Prefix(); n.IsValid() && n.Addr().Is4() && n.Bits() <= 16 && n.Contains(a) {
			*by16 = id + 1
		}
	}
	return id
}

// parseAddr is netip.ParseAddr, an IPv4 address in dotted decimal (what
// the proxies log) read directly: netip.ParseAddr's general parse was
// more than half of CountryID (agg2-sketchkeys-cpu.pprof in
// bench/results/profiles-23). Anything else, malformed IPv4 included,
// goes to netip.ParseAddr, so the result and error are always its.
func parseAddr(s string) (netip.Addr, error) {
	var b [4]byte
	field, digits, v := 0, 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if digits == 1 && v == 0 || digits == 3 {
				// A leading zero, or a fourth digit.
				return netip.ParseAddr(s)
			}
			v = v*10 + int(c-'0')
			digits++
		case c == '.' && digits > 0 && field < 3 && v <= 255:
			b[field] = byte(v)
			field, digits, v = field+1, 0, 0
		default:
			return netip.ParseAddr(s)
		}
	}
	if field != 3 || digits == 0 || v > 255 {
		return netip.ParseAddr(s)
	}
	b[3] = byte(v)
	return netip.AddrFrom4(b), nil
}

// geoSlotBits is log2(geoSlots).
const geoSlotBits = 14

// netKey packs the network prefixOf(a) gives into a word, never 0: an
// IPv4 /24 or the top 48 bits of an IPv6 address, tagged by family.
func netKey(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return 1<<56 | uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2])
	}
	b := a.As16()
	return 2<<56 | uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
}

// Visitor hashes what identifies a visitor, the client address (truncated
// if configured) and the user agent, keyed by the secret salt.
func (c *Classifier) Visitor(addr, ua string) uint64 {
	b := append(c.hashb[:0], c.s.cfg.Salt...)
	if c.s.cfg.TruncateIP {
		if a, err := parseAddr(addr); err == nil {
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
