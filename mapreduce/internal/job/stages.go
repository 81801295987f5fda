package job

import (
	"github.com/axiomhq/hyperloglog"

	"shortfleet/logfmt"
	"shortfleet/mapreduce/internal/dims"
	sfsql "shortfleet/sql"
)

// Click is one click (a redirect to a link), classified: what Map emits.
// Its dimension values are ids of the classifier that mapped it.
type Click struct {
	Link    int64
	Hour    int64 // Unix seconds of the hour's start, UTC
	Day     int32 // days since 1970-01-01, UTC
	Bot     bool
	Visitor uint64
	Dims    IDTuple
}

// IDTuple is a click's dimension values as classifier ids, in the order of
// Tuple's fields.
type IDTuple [6]dims.ID

// Tuple is a click's dimension values.
type Tuple struct {
	Browser, OS, Device, Referrer, Country, Language string
}

// HourKey identifies an hourly aggregate.
type HourKey struct {
	Link int64
	Hour int64
}

// HourCounts are an hour's clicks, and how many of them were bots'.
type HourCounts struct {
	Clicks, Bots int64
}

// DayKey identifies a daily aggregate.
type DayKey struct {
	Link int64
	Day  int32
}

// TupleKey counts clicks of one link on one day with one set of dimension
// values: combining by the whole tuple costs one map update per click, and
// the per-dimension counts are drawn from it once, at commit.
type TupleKey struct {
	DayKey
	Bot bool
	Tuple
}

// SegmentPartial is what Combine makes of one segment: dimension tuples
// still as ids of the segment's classifier.
type SegmentPartial struct {
	Hours   map[HourKey]HourCounts
	Tuples  map[IDTupleKey]int64
	Uniques map[DayKey]*hyperloglog.Sketch
}

// IDTupleKey is TupleKey with ids.
type IDTupleKey struct {
	DayKey
	Bot bool
	IDTuple
}

// NewSegmentPartial returns an empty SegmentPartial.
func NewSegmentPartial() *SegmentPartial {
	return &SegmentPartial{Hours: map[HourKey]HourCounts{}, Tuples: map[IDTupleKey]int64{}, Uniques: map[DayKey]*hyperloglog.Sketch{}}
}

// Partial is what one or more segments add to the stats.
type Partial struct {
	Hours   map[HourKey]HourCounts
	Tuples  map[TupleKey]int64
	Uniques map[DayKey]*hyperloglog.Sketch
}

// NewPartial returns an empty Partial.
func NewPartial() *Partial {
	return &Partial{Hours: map[HourKey]HourCounts{}, Tuples: map[TupleKey]int64{}, Uniques: map[DayKey]*hyperloglog.Sketch{}}
}

// Clicks is the number of clicks the partial holds.
func (p *Partial) Clicks() int64 { return clicksOf(p.Hours) }

// Clicks is the number of clicks the partial holds.
func (p *SegmentPartial) Clicks() int64 { return clicksOf(p.Hours) }

func clicksOf(hours map[HourKey]HourCounts) int64 {
	var n int64
	for _, c := range hours {
		n += c.Clicks
	}
	return n
}

const (
	hourNS = int64(3600 * 1e9)
	dayNS  = 24 * hourNS
)

// floorDiv divides rounding down, so times before 1970 floor correctly.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Map is the map stage: it emits one classified Click for every click in a
// batch, i.e. every redirect to a link. 404s, 410s and errors are logged
// but are not clicks.
func Map(b *logfmt.Batch, c *dims.Classifier, out []Click) []Click {
	status, link, times := b.Status.Values(), b.LinkID.Values(), b.Time.Values()
	for i := range status {
		if link[i] <= 0 || !logfmt.IsRedirect(status[i]) {
			continue
		}
		t := int64(times[i])
		ua := b.UserAgent.Value(i)
		addr := b.ClientAddr.Value(i)
		u := c.UserAgentIDs(ua)
		out = append(out, Click{
			Link:    link[i],
			Hour:    floorDiv(t, hourNS) * 3600,
			Day:     int32(floorDiv(t, dayNS)),
			Bot:     u.Bot,
			Visitor: c.Visitor(addr, ua),
			Dims: IDTuple{u.Browser, u.OS, u.Device,
				c.ReferrerHostID(b.Referrer.Value(i)), c.CountryID(addr), c.LanguageID(b.AcceptLanguage.Value(i))},
		})
	}
	return out
}

// Combine is the combine stage: it folds a segment's clicks into p, so
// each segment ships one count per aggregate instead of one row per click.
func Combine(p *SegmentPartial, clicks []Click) {
	for i := range clicks {
		c := &clicks[i]
		hk := HourKey{c.Link, c.Hour}
		h := p.Hours[hk]
		h.Clicks++
		if c.Bot {
			h.Bots++
		}
		p.Hours[hk] = h
		dk := DayKey{c.Link, c.Day}
		p.Tuples[IDTupleKey{DayKey: dk, Bot: c.Bot, IDTuple: c.Dims}]++
		sk := p.Uniques[dk]
		if sk == nil {
			sk = sfsql.NewSketch()
			p.Uniques[dk] = sk
		}
		sk.InsertHash(c.Visitor)
	}
}

// Partition is the shuffle: it splits a segment's partial into n by link
// id, so each reducer sees every aggregate of the links it owns, and turns
// its dimension ids back into names with the segment's classifier.
func Partition(p *SegmentPartial, c *dims.Classifier, n int) []*Partial {
	parts := make([]*Partial, n)
	for i := range parts {
		parts[i] = NewPartial()
	}
	for k, v := range p.Hours {
		parts[partitionOf(k.Link, n)].Hours[k] = v
	}
	for k, v := range p.Tuples {
		d := k.IDTuple
		parts[partitionOf(k.Link, n)].Tuples[TupleKey{DayKey: k.DayKey, Bot: k.Bot, Tuple: Tuple{
			Browser: c.Name(d[0]), OS: c.Name(d[1]), Device: c.Name(d[2]),
			Referrer: c.Name(d[3]), Country: c.Name(d[4]), Language: c.Name(d[5]),
		}}] += v
	}
	for k, v := range p.Uniques {
		parts[partitionOf(k.Link, n)].Uniques[k] = v
	}
	return parts
}

// partitionOf spreads link ids over n partitions. Ids are dense sequence
// numbers, so a multiplicative hash evens out runs of recent links.
func partitionOf(link int64, n int) int {
	return int((uint64(link) * 0x9e3779b97f4a7c15 >> 32) % uint64(n))
}

// Reduce is the reduce stage: it merges the partials of one partition
// (one per segment) into the partition's totals. Sketches are merged, not
// added: a visitor seen in two segments is one visitor.
func Reduce(inputs []*Partial) (*Partial, error) {
	out := NewPartial()
	for _, in := range inputs {
		for k, v := range in.Hours {
			h := out.Hours[k]
			h.Clicks += v.Clicks
			h.Bots += v.Bots
			out.Hours[k] = h
		}
		for k, v := range in.Tuples {
			out.Tuples[k] += v
		}
		for k, sk := range in.Uniques {
			if have := out.Uniques[k]; have != nil {
				if err := have.Merge(sk); err != nil {
					return nil, err
				}
			} else {
				out.Uniques[k] = sk.Clone()
			}
		}
	}
	return out, nil
}

// Day is one link's day, as committed.
type Day struct {
	Clicks, Bots int64
	Dims         sfsql.Dims
	Uniques      *hyperloglog.Sketch
}

// Days draws per-day totals and dimension counts from a reduced partial.
func (p *Partial) Days() map[DayKey]*Day {
	days := map[DayKey]*Day{}
	get := func(k DayKey) *Day {
		d := days[k]
		if d == nil {
			d = &Day{Dims: sfsql.Dims{}}
			days[k] = d
		}
		return d
	}
	for k, n := range p.Tuples {
		d := get(k.DayKey)
		d.Clicks += n
		if k.Bot {
			d.Bots += n
		}
		d.Dims.Add(sfsql.DimReferrer, k.Referrer, n)
		d.Dims.Add(sfsql.DimCountry, k.Country, n)
		d.Dims.Add(sfsql.DimBrowser, k.Browser, n)
		d.Dims.Add(sfsql.DimOS, k.OS, n)
		d.Dims.Add(sfsql.DimDevice, k.Device, n)
		d.Dims.Add(sfsql.DimLanguage, k.Language, n)
	}
	for k, sk := range p.Uniques {
		get(k).Uniques = sk
	}
	return days
}
