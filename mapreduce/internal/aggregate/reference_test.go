package aggregate

import "shortfleet/mapreduce/internal/dims"

// The older path, a partial per segment (MapCombine), shuffled by link
// (Partition) and merged again per partition (Reduce), kept only as the
// reference the tests hold the job's fold (fold.go) to: TestFoldMatchesReduce
// and the tests of the map and combine stages. The job no longer runs it.

// SegmentPartial is what Combine makes of one segment.
type SegmentPartial struct {
	Days map[DayKey]*Day
	daySlab
}

// MapCombine runs the map and combine stages over a whole segment, its
// bytes in memory, and returns the partial and the number of records.
func MapCombine(data []byte, c *dims.Classifier) (*SegmentPartial, int64, error) {
	return MapCombineFiltered(data, c, nil)
}

// MapCombineFiltered is MapCombine keeping only clicks keep accepts (all,
// if keep is nil): the job's MapSegment, combined into one partial.
func MapCombineFiltered(data []byte, c *dims.Classifier, keep func(Click) bool) (*SegmentPartial, int64, error) {
	var s Scratch
	n, err := s.MapSegment(data, c, keep)
	p := NewSegmentPartial()
	Combine(p, s.Clicks())
	return p, n, err
}

// merge adds o's counts to vs.
func (vs *values) merge(o *values) {
	for _, e := range o.list {
		vs.addKey(e.k, e.n)
	}
	if o.m != nil {
		o.m.each(vs.addKey)
	}
}

// merge adds o to d. Visitor sets are merged, not added: a visitor seen in
// both counts once.
func (d *Day) merge(o *Day) error {
	d.Clicks += o.Clicks
	d.Bots += o.Bots
	for _, h := range o.hours {
		d.hours.add(h.Hour, h.Clicks, h.Bots)
	}
	d.values.merge(&o.values)
	// Both sets whole: o's pending hashes and sparse keys folded in.
	if ov := o.Visitors(); ov.Sketch != nil || len(ov.Exact) > 0 {
		if err := d.Visitors().Merge(ov); err != nil {
			return err
		}
	}
	return nil
}

// NewSegmentPartial returns an empty SegmentPartial.
func NewSegmentPartial() *SegmentPartial {
	return &SegmentPartial{Days: map[DayKey]*Day{}}
}

// Hours are the partial's clicks by link and hour.
func (p *SegmentPartial) Hours() map[HourKey]HourCounts { return hoursOf(p.Days) }

// Clicks is the number of clicks the partial holds.
func (p *SegmentPartial) Clicks() int64 { return clicksOf(p.Days) }

// Combine is the combine stage: it folds a segment's clicks into p, so
// each segment ships one count per aggregate instead of one row per click.
func Combine(p *SegmentPartial, clicks []Click) {
	combine(p.Days, &p.daySlab, clicks)
}

// Partition is the shuffle: it splits a segment's partial into n by link
// id, so each reducer sees every aggregate of the links it owns. The days
// move: p must not be used after.
func Partition(p *SegmentPartial, n int) []*Partial {
	parts := make([]*Partial, n)
	for i := range parts {
		parts[i] = &Partial{Days: make(map[DayKey]*Day, len(p.Days)/n+len(p.Days)/(4*n)+1)}
	}
	for k, d := range p.Days {
		parts[PartitionOf(k.Link(), n)].Days[k] = d
	}
	return parts
}

// Reduce is the reduce stage: it merges the partials of one partition
// (one per segment) into the partition's totals. Visitor sets are merged,
// not added: a visitor seen in two segments is one visitor. Reduce takes
// over its inputs.
func Reduce(inputs []*Partial) (*Partial, error) {
	if len(inputs) == 0 {
		return NewPartial(), nil
	}
	// Start from the largest input, sized for all of them: link-days
	// repeat across segments, but the map then never grows in steps,
	// rehashing all it holds each time.
	big, total := 0, 0
	for i, in := range inputs {
		total += len(in.Days)
		if len(in.Days) > len(inputs[big].Days) {
			big = i
		}
	}
	out := inputs[big]
	if total > 2*len(out.Days) {
		days := make(map[DayKey]*Day, total)
		for k, d := range out.Days {
			days[k] = d
		}
		out = &Partial{Days: days}
	}
	for i, in := range inputs {
		if i == big {
			continue
		}
		for k, d := range in.Days {
			have := out.Days[k]
			if have == nil {
				out.Days[k] = d
				continue
			}
			if err := have.merge(d); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// NewPartial returns an empty Partial.
func NewPartial() *Partial {
	return &Partial{Days: map[DayKey]*Day{}}
}
