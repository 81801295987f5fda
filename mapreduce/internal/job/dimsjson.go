package job

import (
	"encoding/json"
	"errors"
	"strconv"

	sfsql "shortfleet/sql"
)

// dimsDecoder reads link_daily.dims, a JSON object of objects of counts
// ({"country":{"CH":3},...}), into one reused sfsql.Dims. encoding/json
// was 60 % of mergeStored's CPU (profile merge-commit-before.pprof in
// bench/results/profiles-23): reflection, a fresh map per dimension and a
// string per value, for every stored row of a window. This reads the
// shape the job writes, and that jsonb's text (spaces after ':' and ',')
// has, without reflection, into maps cleared and reused row after row,
// with the value names interned; anything else (an escaped string, a
// fraction, another shape) falls back to encoding/json, so every valid
// document reads as before.
type dimsDecoder struct {
	d      sfsql.Dims
	intern map[string]string
	p      []byte
	i      int
}

// smallDim is the most values a dimension's map may have held and still
// be cleared for the next document rather than dropped: a Go map's first
// group holds 8.
const smallDim = 8

// internMax bounds the interned value names; beyond it names are
// allocated as encoding/json would.
const internMax = 1 << 16

var errSlowPath = errors.New("dims: not the plain shape")

// decode returns b's counts. They are valid until the next call.
func (x *dimsDecoder) decode(b []byte) (sfsql.Dims, error) {
	if x.d == nil {
		x.d, x.intern = sfsql.Dims{}, map[string]string{}
	}
	for k, m := range x.d {
		// Clearing costs a map its capacity, not its count: one grown
		// by a busy day's referrers would cost every quiet day after
		// it (mapclear, 30 % of decode in merge3-read-before.pprof).
		if len(m) > smallDim {
			delete(x.d, k)
		} else {
			clear(m)
		}
	}
	x.p, x.i = b, 0
	err := x.object()
	x.p = nil
	if err == nil {
		return x.d, nil
	}
	if err != errSlowPath {
		return nil, err
	}
	d := sfsql.Dims{}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return d, nil
}

func (x *dimsDecoder) space() {
	for x.i < len(x.p) {
		switch x.p[x.i] {
		case ' ', '\t', '\n', '\r':
			x.i++
		default:
			return
		}
	}
}

// expect consumes c, after any space.
func (x *dimsDecoder) expect(c byte) bool {
	x.space()
	if x.i < len(x.p) && x.p[x.i] == c {
		x.i++
		return true
	}
	return false
}

// str reads a string without escapes and returns its bytes.
func (x *dimsDecoder) str() ([]byte, bool) {
	if !x.expect('"') {
		return nil, false
	}
	start := x.i
	for ; x.i < len(x.p); x.i++ {
		switch c := x.p[x.i]; {
		case c == '"':
			x.i++
			return x.p[start : x.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			// Escapes, and bytes that encoding/json checks or
			// replaces (invalid UTF-8), take the slow path.
			return nil, false
		}
	}
	return nil, false
}

// object reads the outer object into x.d.
func (x *dimsDecoder) object() error {
	if !x.expect('{') {
		return errSlowPath
	}
	if x.expect('}') {
		return x.end()
	}
	for {
		k, ok := x.str()
		if !ok || !x.expect(':') || !x.expect('{') {
			return errSlowPath
		}
		m := x.d[string(k)]
		if m == nil {
			m = map[string]int64{}
			x.d[string(k)] = m
		}
		// A repeated dimension replaces, as with encoding/json.
		clear(m)
		if !x.expect('}') {
			for {
				v, ok := x.str()
				if !ok || !x.expect(':') {
					return errSlowPath
				}
				n, ok := x.int()
				if !ok {
					return errSlowPath
				}
				// A repeated name keeps the last count, as encoding/json's.
				m[x.name(v)] = n
				if x.expect('}') {
					break
				}
				if !x.expect(',') {
					return errSlowPath
				}
			}
		}
		if x.expect('}') {
			return x.end()
		}
		if !x.expect(',') {
			return errSlowPath
		}
	}
}

// end checks nothing but space follows the document.
func (x *dimsDecoder) end() error {
	x.space()
	if x.i != len(x.p) {
		return errSlowPath
	}
	return nil
}

// int reads a JSON integer.
func (x *dimsDecoder) int() (int64, bool) {
	x.space()
	start := x.i
	if x.i < len(x.p) && x.p[x.i] == '-' {
		x.i++
	}
	for x.i < len(x.p) && x.p[x.i] >= '0' && x.p[x.i] <= '9' {
		x.i++
	}
	if x.i < len(x.p) {
		if c := x.p[x.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	digits := x.p[start:x.i]
	neg := len(digits) > 0 && digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		// None, or perhaps beyond int64: strconv decides.
		n, err := strconv.ParseInt(string(x.p[start:x.i]), 10, 64)
		return n, err == nil
	}
	// 18 digits cannot overflow.
	var n int64
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// name returns v as a string, interned.
func (x *dimsDecoder) name(v []byte) string {
	if s, ok := x.intern[string(v)]; ok {
		return s
	}
	s := string(v)
	if len(x.intern) < internMax {
		x.intern[s] = s
	}
	return s
}
