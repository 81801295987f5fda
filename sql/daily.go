package sql

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/axiomhq/hyperloglog"
)

// Dimensions a link's daily stats count clicks by.
const (
	DimReferrer = "referrer" // referrer host, or "(direct)"
	DimCountry  = "country"  // ISO 3166 code from GeoIP, or "--"
	DimBrowser  = "browser"  // user agent family
	DimOS       = "os"       // operating system family
	DimDevice   = "device"   // desktop, mobile, tablet, bot or other
	DimLanguage = "language" // primary language of Accept-Language, or "(none)"
)

// DimNames lists the dimensions in display order.
var DimNames = []string{DimReferrer, DimCountry, DimBrowser, DimOS, DimDevice, DimLanguage}

// MaxDimValues caps the values a dimension keeps per link per day; clicks
// of values beyond it are counted under OtherValue, so a link with a
// million referrers does not make a million-key row.
const MaxDimValues = 500

// OtherValue collects the clicks of values beyond MaxDimValues.
const OtherValue = "(other)"

// Dims counts clicks by dimension and value: dims[DimCountry]["CH"] = 3.
// It is stored as JSON in link_daily.dims.
type Dims map[string]map[string]int64

// Add counts n clicks of value in dim.
func (d Dims) Add(dim, value string, n int64) {
	m := d[dim]
	if m == nil {
		m = map[string]int64{}
		d[dim] = m
	}
	if _, ok := m[value]; !ok && len(m) >= MaxDimValues {
		value = OtherValue
	}
	m[value] += n
}

// Merge adds o's counts to d.
func (d Dims) Merge(o Dims) {
	for dim, values := range o {
		for v, n := range values {
			d.Add(dim, v, n)
		}
	}
}

// ValueCount is a dimension value and its clicks.
type ValueCount struct {
	Value  string `json:"value"`
	Clicks int64  `json:"clicks"`
}

// Top returns dim's values by clicks, most first, at most n (all if n <= 0).
func (d Dims) Top(dim string, n int) []ValueCount {
	var out []ValueCount
	for v, c := range d[dim] {
		out = append(out, ValueCount{v, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Clicks != out[j].Clicks {
			return out[i].Clicks > out[j].Clicks
		}
		return out[i].Value < out[j].Value
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// NewSketch returns an empty unique-visitor sketch: HyperLogLog with 2^14
// registers (about 0.8% standard error), sparse while small.
func NewSketch() *hyperloglog.Sketch { return hyperloglog.New14() }

// Stored visitor sets (link_daily.uniques) start with a tag byte: an exact
// set of at most ExactMax visitor hashes (most link-days have a handful),
// or a HyperLogLog sketch.
const (
	tagExact  = 'E' // then 8-byte little-endian hashes
	tagSketch = 'H' // then an axiomhq/hyperloglog sketch
	// ExactMax is the most hashes an exact set holds.
	ExactMax = 64
)

// Visitors is a set of visitor hashes: exact while small, a sketch beyond
// ExactMax. The zero value is empty.
type Visitors struct {
	Exact  []uint64
	Sketch *hyperloglog.Sketch
}

// Add adds a hash.
func (v *Visitors) Add(h uint64) {
	if v.Sketch != nil {
		v.Sketch.InsertHash(h)
		return
	}
	for _, x := range v.Exact {
		if x == h {
			return
		}
	}
	v.Exact = append(v.Exact, h)
	if len(v.Exact) > ExactMax {
		v.Sketch = NewSketch()
		for _, x := range v.Exact {
			v.Sketch.InsertHash(x)
		}
		v.Exact = nil
	}
}

// Merge adds o's visitors; a visitor in both counts once.
func (v *Visitors) Merge(o *Visitors) error {
	if o.Sketch != nil {
		if v.Sketch == nil {
			v.Sketch = o.Sketch.Clone()
			for _, x := range v.Exact {
				v.Sketch.InsertHash(x)
			}
			v.Exact = nil
			return nil
		}
		return v.Sketch.Merge(o.Sketch)
	}
	for _, x := range o.Exact {
		v.Add(x)
	}
	return nil
}

// MergeExact adds the visitors of a stored exact set of at most ExactMax
// hashes (DecodeVisitors' input) to v, as Merge of the decoded set would,
// read in place: merging a run's days with their stored rows decoded each
// into a Visitors of its own first, an allocation and a copy per day
// (merge4-rows-direct.pprof in bench/results/profiles-23). It reports
// false, and leaves v as it was, for anything else, which DecodeVisitors
// and Merge take.
func (v *Visitors) MergeExact(b []byte) bool {
	if len(b) == 0 || b[0] != tagExact || (len(b)-1)%8 != 0 || (len(b)-1)/8 > ExactMax {
		return false
	}
	for i := 1; i < len(b); i += 8 {
		h := binary.LittleEndian.Uint64(b[i:])
		// The decoded set would hold a repeated hash once. While v is
		// exact, Add finds it there; once a sketch, it is skipped here.
		if v.Sketch != nil && repeats(b[1:i], h) {
			continue
		}
		v.Add(h)
	}
	return true
}

// repeats reports whether little-endian hashes b hold h.
func repeats(b []byte, h uint64) bool {
	for i := 0; i < len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:]) == h {
			return true
		}
	}
	return false
}

// Count is the number of distinct visitors: exact for an exact set, the
// sketch's estimate otherwise.
func (v *Visitors) Count() uint64 {
	if v.Sketch != nil {
		return v.Sketch.Estimate()
	}
	return uint64(len(v.Exact))
}

// AppendBinary appends the stored form.
func (v *Visitors) AppendBinary(b []byte) ([]byte, error) {
	if v.Sketch != nil {
		return v.Sketch.AppendBinary(append(b, tagSketch))
	}
	b = append(b, tagExact)
	for _, x := range v.Exact {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	return b, nil
}

// DecodeVisitors reads a stored visitor set.
func DecodeVisitors(b []byte) (*Visitors, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("decode visitors: empty")
	}
	switch b[0] {
	case tagExact:
		if (len(b)-1)%8 != 0 {
			return nil, fmt.Errorf("decode visitors: %d bytes of hashes", len(b)-1)
		}
		v := &Visitors{}
		for i := 1; i < len(b); i += 8 {
			v.Add(binary.LittleEndian.Uint64(b[i:]))
		}
		return v, nil
	case tagSketch:
		sk := NewSketch()
		if err := sk.UnmarshalBinary(b[1:]); err != nil {
			return nil, fmt.Errorf("decode visitors sketch: %w", err)
		}
		return &Visitors{Sketch: sk}, nil
	}
	return nil, fmt.Errorf("decode visitors: unknown tag %q", b[0])
}

// UniquesOf counts the distinct visitors of several days by merging their
// sets: a range's uniques are not the sum of its days'.
func UniquesOf(stored [][]byte) (uint64, error) {
	var total Visitors
	for _, b := range stored {
		v, err := DecodeVisitors(b)
		if err != nil {
			return 0, err
		}
		if err := total.Merge(v); err != nil {
			return 0, fmt.Errorf("merge visitors: %w", err)
		}
	}
	return total.Count(), nil
}
