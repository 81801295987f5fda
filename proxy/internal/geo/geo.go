// Package geo maps a client address to its country for the proxy's
// country redirect rules, without allocating per lookup.
//
// A MaxMind-format database is read once, at start, and flattened into
// sorted, disjoint address ranges, each with its two-letter country code;
// a lookup is a binary search over them. The reader's own Lookup decodes
// a record per call (maps, strings), which the redirect path cannot
// afford; ranges cost about 40 bytes each, a few MB for a full country
// database.
//
// Two record layouts are read: MaxMind's GeoLite2/GeoIP2 Country
// ({"country": {"iso_code": "FR"}}, as mapreduce's dims reads it) and
// ip-location-db's geo-whois-asn-country ({"country_code": "FR"}), the
// database the fleet installs by default.
package geo

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DB is a country database flattened for lookups. The zero of a nil *DB
// knows no address. It is immutable, so safe for concurrent use.
type DB struct {
	ranges []span // IPv6, and IPv4 too (v4 serves lookups of those)
	// v4 are the IPv4 ranges as integers, and v4idx[k] the first of them
	// that reaches into the /16 k: a lookup searches only the ranges of
	// its /16, a few compares instead of a search of the whole table
	// (the redirect path's budget for a country rule is a few ns).
	v4    []span4
	v4idx []int32 // 1<<16 + 1 entries
}

type span4 struct {
	lo, hi uint32
	cc     [2]byte
}

type span struct {
	lo, hi netip.Addr // inclusive; both IPv4 or both IPv6
	cc     [2]byte
}

// record holds either layout; the decoder fills what the record has.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	CountryCode string `maxminddb:"country_code"`
}

// Open reads the database at path.
func Open(path string) (*DB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open country database %s: %w", path, err)
	}
	defer r.Close()
	db, err := flatten(r)
	if err != nil {
		return nil, fmt.Errorf("read country database %s: %w", path, err)
	}
	return db, nil
}

// OpenBytes reads a database held in memory.
func OpenBytes(b []byte) (*DB, error) {
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("open country database: %w", err)
	}
	defer r.Close()
	return flatten(r)
}

func flatten(r *maxminddb.Reader) (*DB, error) {
	db := &DB{}
	for res := range r.Networks() {
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("walk networks: %w", err)
		}
		var rec record
		if err := res.Decode(&rec); err != nil {
			return nil, fmt.Errorf("decode record of %s: %w", res.Prefix(), err)
		}
		cc := rec.Country.ISOCode
		if cc == "" {
			cc = rec.CountryCode
		}
		if len(cc) != 2 {
			continue // no country (an anonymous network, a continent only)
		}
		p := res.Prefix().Masked()
		lo := p.Addr().Unmap()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			lo = netip.PrefixFrom(lo, p.Bits()-96).Addr()
			p = netip.PrefixFrom(lo, p.Bits()-96)
		}
		db.ranges = append(db.ranges, span{lo: lo, hi: last(p), cc: [2]byte{upper(cc[0]), upper(cc[1])}})
	}
	slices.SortFunc(db.ranges, func(a, b span) int { return a.lo.Compare(b.lo) })
	// Merge neighbours of one country: fewer ranges, shorter searches.
	out := db.ranges[:0]
	for _, s := range db.ranges {
		if n := len(out); n > 0 && out[n-1].cc == s.cc && out[n-1].hi.Next() == s.lo {
			out[n-1].hi = s.hi
			continue
		}
		out = append(out, s)
	}
	db.ranges = slices.Clip(out)
	for _, s := range db.ranges {
		if s.lo.Is4() {
			db.v4 = append(db.v4, span4{lo: u32(s.lo), hi: u32(s.hi), cc: s.cc})
		}
	}
	db.v4idx = make([]int32, 1<<16+1)
	j := 0
	for k := range 1 << 16 {
		for j < len(db.v4) && db.v4[j].hi>>16 < uint32(k) {
			j++
		}
		db.v4idx[k] = int32(j)
	}
	db.v4idx[1<<16] = int32(len(db.v4))
	return db, nil
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// last is the last address of a masked prefix.
func last(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// Country returns the upper-case ISO 3166-1 alpha-2 code of the country a
// is in, and false when the database does not know a. It does not
// allocate.
func (db *DB) Country(a netip.Addr) ([2]byte, bool) {
	if db == nil || !a.IsValid() {
		return [2]byte{}, false
	}
	a = a.Unmap()
	if a.Is4() {
		return db.country4(u32(a))
	}
	if x, ok := embeddedV4(a); ok {
		return db.country4(x)
	}
	rs := db.ranges
	// The first range whose hi is >= a.
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].hi.Compare(a) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(rs) && rs[lo].lo.Compare(a) <= 0 {
		return rs[lo].cc, true
	}
	return [2]byte{}, false
}

// Len is the number of ranges held.
func (db *DB) Len() int {
	if db == nil {
		return 0
	}
	return len(db.ranges)
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// country4 searches the IPv4 ranges that reach into x's /16.
func (db *DB) country4(x uint32) ([2]byte, bool) {
	k := x >> 16
	lo, hi := int(db.v4idx[k]), int(db.v4idx[k+1])
	if hi < len(db.v4) {
		hi++ // the range that starts in this /16 may begin in an earlier one
	}
	rs := db.v4
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].hi < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(rs) && rs[lo].lo <= x && x <= rs[lo].hi {
		return rs[lo].cc, true
	}
	return [2]byte{}, false
}

// embeddedV4 is the IPv4 address some IPv6 ranges stand for, as MaxMind
// databases alias them to their IPv4 data (and the reader follows): an
// IPv4-compatible address (::a.b.c.d), 6to4 (2002:aabb:ccdd::/48) and
// Teredo (2001:0:aabb:ccdd::/64). IPv4-mapped addresses were unmapped
// already.
func embeddedV4(a netip.Addr) (uint32, bool) {
	b := a.As16()
	v4 := func(i int) uint32 { return uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3]) }
	switch {
	case b[0] == 0x20 && b[1] == 0x02:
		return v4(2), true
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0:
		return v4(4), true
	}
	for _, c := range b[:12] {
		if c != 0 {
			return 0, false
		}
	}
	return v4(12), true
}
