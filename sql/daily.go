package sql

import (
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

// DecodeSketch reads a sketch stored in link_daily.uniques.
func DecodeSketch(b []byte) (*hyperloglog.Sketch, error) {
	sk := NewSketch()
	if err := sk.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("decode uniques sketch: %w", err)
	}
	return sk, nil
}

// UniquesOf estimates the distinct visitors of several days by merging
// their sketches: a range's uniques are not the sum of its days'.
func UniquesOf(sketches [][]byte) (uint64, error) {
	total := NewSketch()
	for _, b := range sketches {
		sk, err := DecodeSketch(b)
		if err != nil {
			return 0, err
		}
		if err := total.Merge(sk); err != nil {
			return 0, fmt.Errorf("merge uniques sketches: %w", err)
		}
	}
	return total.Estimate(), nil
}
