package job

import (
	"encoding/json"
	"strconv"

	"shortfleet/mapreduce/internal/aggregate"
	"shortfleet/mapreduce/internal/dims"
	sfsql "shortfleet/sql"
)

// dimsDecoder adds link_daily.dims, a JSON object of objects of counts
// ({"country":{"CH":3},...}), to a day. encoding/json was 60 % of
// mergeStored's CPU (profile merge-commit-before.pprof in
// bench/results/profiles-23): reflection, a fresh map per dimension and a
// string per value, for every stored row of a window; and reading into
// maps, then Day.AddDims walking them and asking the shared value table
// for each value's id under its lock, was still half of mergeRow
// (merge4-commit-before.pprof). This reads the shape the job writes, and
// that jsonb's text (spaces after ':' and ',') has, without reflection,
// and finds each value's id in a cache of its own: no map, no string and
// no lock per value. Anything else (an escaped string, a fraction,
// another shape) goes to encoding/json and AddDims, so every valid
// document adds as before; so does one that names a counted dimension,
// or a value within one, twice, where encoding/json keeps the last.
//
// A decoder belongs to one goroutine and one run: the ids it caches are
// the run's (dims.Shared.Trim runs between runs).
type dimsDecoder struct {
	s *dims.Shared
	// ids indexes cached by value name.
	ids    map[string]int32
	cached []cachedID
	// doc numbers the documents, for cachedID.seen.
	doc uint64
	// counts are the document's, added to the day once the whole
	// document has read as the plain shape.
	counts []storedCount
	// slow counts the documents that took encoding/json.
	slow int
	p    []byte
	i    int
}

// cachedID is a value name's id, and the document and dimension
// (seenKey) it was last seen in, which tells a repeated name.
type cachedID struct {
	id   dims.ID
	seen uint64
}

type storedCount struct {
	dim aggregate.StoredDim
	id  dims.ID
	n   int64
}

// cacheMax bounds a decoder's cache of ids; a full cache is emptied
// between documents and refilled.
const cacheMax = 1 << 16

func newDimsDecoder(s *dims.Shared) *dimsDecoder {
	return &dimsDecoder{s: s, ids: map[string]int32{}}
}

// add adds b's counts to d. On an error d's counts are as they were.
func (x *dimsDecoder) add(d *aggregate.Day, b []byte) error {
	if len(x.ids) >= cacheMax {
		clear(x.ids)
		x.cached = x.cached[:0]
	}
	x.doc++
	x.p, x.i, x.counts = b, 0, x.counts[:0]
	ok := x.object()
	x.p = nil
	if ok {
		for _, c := range x.counts {
			d.AddStored(c.dim, c.id, c.n)
		}
		return nil
	}
	x.slow++
	m := sfsql.Dims{}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	d.AddDims(m, x.s)
	return nil
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

// object reads the outer object into x.counts. It reports false for
// anything but the plain shape, and for a repeated counted dimension or
// value.
func (x *dimsDecoder) object() bool {
	if !x.expect('{') {
		return false
	}
	if x.expect('}') {
		return x.end()
	}
	var dimsSeen uint64
	for {
		k, ok := x.str()
		if !ok || !x.expect(':') || !x.expect('{') {
			return false
		}
		dim, counted := aggregate.StoredDimOf(k)
		if counted {
			if dimsSeen&(1<<dim) != 0 {
				return false
			}
			dimsSeen |= 1 << dim
		}
		if !x.expect('}') {
			for {
				v, ok := x.str()
				if !ok || !x.expect(':') {
					return false
				}
				n, ok := x.int()
				if !ok {
					return false
				}
				if counted {
					id, ok := x.id(v, dim)
					if !ok {
						return false
					}
					x.counts = append(x.counts, storedCount{dim, id, n})
				}
				if x.expect('}') {
					break
				}
				if !x.expect(',') {
					return false
				}
			}
		}
		if x.expect('}') {
			return x.end()
		}
		if !x.expect(',') {
			return false
		}
	}
}

// end checks nothing but space follows the document.
func (x *dimsDecoder) end() bool {
	x.space()
	return x.i == len(x.p)
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
	if len(digits) > 1 && digits[0] == '0' {
		// JSON has no leading zeros: encoding/json's error.
		return 0, false
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

// id is value v's id; ok is false if the document has named v in dim
// before.
func (x *dimsDecoder) id(v []byte, dim aggregate.StoredDim) (id dims.ID, ok bool) {
	i, ok := x.ids[string(v)]
	if !ok {
		name := string(v)
		i = int32(len(x.cached))
		x.cached = append(x.cached, cachedID{id: x.s.ID(name)})
		x.ids[name] = i
	}
	c := &x.cached[i]
	// A name in two dimensions is two values, not a repeat.
	seen := x.doc<<8 | uint64(dim)
	if c.seen == seen {
		return 0, false
	}
	c.seen = seen
	return c.id, true
}
