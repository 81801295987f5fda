package aggregate

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/array"

	"shortfleet/logfmt"
	"shortfleet/mapreduce/internal/dims"
	sfsql "shortfleet/sql"
)

// Dimension indexes. A click counts one value of each of the first
// numClickDims: its browser, OS and device together, as one value of
// dimUA (their dims.UAIDs.Kind), which is one count instead of three and
// is spread over the three when the day is written. Stored days, read
// back to be merged, bring browser, OS and device counts of their own.
const (
	dimReferrer = iota
	dimCountry
	dimUA
	dimLanguage
	numClickDims
	dimBrowser = iota - 1
	dimOS      = iota - 1
	dimDevice  = iota - 1
	numDims    = iota - 1
)

// dimNames are the dimensions' names (sfsql.DimNames), by index; dimUA
// has none of its own.
var dimNames = [numDims]string{dimReferrer: sfsql.DimReferrer, dimCountry: sfsql.DimCountry, dimLanguage: sfsql.DimLanguage,
	dimBrowser: sfsql.DimBrowser, dimOS: sfsql.DimOS, dimDevice: sfsql.DimDevice}

// dimKeys are the dimensions' names as keys of link_daily.dims' JSON
// object, with the colon and the brace that opens their values.
var dimKeys = func() (keys [numDims]string) {
	for i, n := range dimNames {
		keys[i] = strconv.Quote(n) + ":{"
	}
	return keys
}()

// outDims are the dimensions a day's counts are written in, in the order
// of sfsql.DimNames.
var outDims = func() []uint8 {
	var out []uint8
	for _, name := range sfsql.DimNames {
		out = append(out, uint8(slices.Index(dimNames[:], name)))
	}
	return out
}()

// Click is one click (a redirect to a link), classified: what Map emits.
// Its dimension values are ids of the classifier that mapped it.
type Click struct {
	Link    int64
	Hour    int64 // Unix seconds of the hour's start, UTC
	Day     int32 // days since 1970-01-01, UTC
	Bot     bool
	Visitor uint64
	Dims    [numClickDims]dims.ID
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

// DayKey identifies a daily aggregate: a link id in the high 46 bits and
// a day (since 1970-01-01, UTC) in the low 18, biased by 2^17. One word
// instead of a struct puts the maps of days, the stages' busiest, on Go's
// fast 64-bit path: a segment's worth of lookups and inserts costs much
// less than with a struct key (BenchmarkDayKeyMap measures both).
// Every instant a record's int64 nanosecond clock can hold is within 2^17
// days of 1970, and keys order as (link, day) do.
type DayKey uint64

const (
	dayBits = 18
	dayBias = 1 << (dayBits - 1)
	// MaxLink is the largest link id a DayKey holds: 2^46-1, some 19,000
	// years of 10 million links a day.
	MaxLink = 1<<(64-dayBits) - 1
)

// MakeDayKey packs a link id (1 to MaxLink) and a day.
func MakeDayKey(link int64, day int32) DayKey {
	return DayKey(uint64(link)<<dayBits | uint64(int64(day)+dayBias))
}

// Link is the key's link id.
func (k DayKey) Link() int64 { return int64(k >> dayBits) }

// Day is the key's day: days since 1970-01-01, UTC.
func (k DayKey) Day() int32 { return int32(int64(k&(1<<dayBits-1)) - dayBias) }

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

// DayOf is the day (since 1970-01-01, UTC) of an instant in Unix
// nanoseconds, the day Map counts a click in.
func DayOf(ns int64) int32 { return int32(floorDiv(ns, dayNS)) }

// Map is the map stage: it emits one classified Click for every click in a
// batch, i.e. every redirect to a link. 404s, 410s and errors are logged
// but are not clicks, nor is a record with an id no link has (below 1 or
// past MaxLink).
func Map(b *logfmt.Batch, c *dims.Classifier, out []Click) []Click {
	var bd batchDims
	bd.set(b, c)
	return mapRows(b, c, &bd, out, 0, b.Len())
}

// isClick tells a click (a redirect to a link) from other records.
func isClick(link int64, status uint16) bool {
	return link > 0 && link <= MaxLink && logfmt.IsRedirect(status)
}

// batchDims are a batch's dictionary-encoded strings (logfmt.DictColumns)
// classified, each distinct value once: mapRows then finds a row's user
// agent, referrer and language ids by index, not by looking its string up
// in the classifier's caches. Only values some click has are classified,
// so a scanner's 404s with random user agents cost no parsing and no
// value-table entries, as when rows were classified one by one. A plain
// column (a version 1 segment) has no indices, and mapRows classifies its
// rows one by one.
type batchDims struct {
	ua                 dictIDs[dims.UAIDs]
	referrer, language dictIDs[dims.ID]
}

func (bd *batchDims) set(b *logfmt.Batch, c *dims.Classifier) {
	ua, ref, lang := bd.ua.reset(&b.UserAgent), bd.referrer.reset(&b.Referrer), bd.language.reset(&b.AcceptLanguage)
	if ua || ref || lang {
		for i, st := range b.Status.Values() {
			if !isClick(b.LinkID.Value(i), st) {
				continue
			}
			if ua {
				bd.ua.need[bd.ua.at[i]] = true
			}
			if ref {
				bd.referrer.need[bd.referrer.at[i]] = true
			}
			if lang {
				bd.language.need[bd.language.at[i]] = true
			}
		}
	}
	bd.ua.classify(c.UserAgentIDs)
	bd.referrer.classify(c.ReferrerHostID)
	bd.language.classify(c.LanguageID)
}

// dictIDs are the ids of one dictionary column's values.
type dictIDs[T any] struct {
	values *array.String
	at     []int32 // each row's value; nil for a plain column
	ids    []T
	need   []bool // whether a click has the value
}

// reset points d at a batch's column; it reports whether the column is
// dictionary-encoded.
func (d *dictIDs[T]) reset(s *logfmt.Strings) bool {
	values, at, ok := s.Dictionary()
	if !ok {
		d.at = nil
		return false
	}
	d.values, d.at = values, at
	n := values.Len()
	d.ids = slices.Grow(d.ids[:0], n)[:n]
	d.need = slices.Grow(d.need[:0], n)[:n]
	clear(d.need)
	return true
}

// classify classifies the values clicks need.
func (d *dictIDs[T]) classify(fn func(string) T) {
	if d.at == nil {
		return
	}
	for k, need := range d.need {
		if need {
			d.ids[k] = fn(d.values.Value(k))
		}
	}
}

// mapColumns are the columns Map reads. MapSegment decompresses only these
// (logfmt.NewColumnsReader), which leaves out the bulkiest, the headers:
// reading them is much faster than reading segments whole
// (BenchmarkLocalSegments' decode_columns beside decode, which make
// bench-mapreduce reports).
var mapColumns = []int{logfmt.ColTime, logfmt.ColClientAddr, logfmt.ColStatus, logfmt.ColLinkID,
	logfmt.ColUserAgent, logfmt.ColReferrer, logfmt.ColAcceptLanguage}

// mapRows is Map over the batch's rows lo to hi; bd is the batch's.
func mapRows(b *logfmt.Batch, c *dims.Classifier, bd *batchDims, out []Click, lo, hi int) []Click {
	status, link, times := b.Status.Values()[lo:hi], b.LinkID.Values()[lo:hi], b.Time.Values()[lo:hi]
	out = slices.Grow(out, len(status))
	for j := range status {
		if !isClick(link[j], status[j]) {
			continue
		}
		i := lo + j
		t := int64(times[j])
		ua := b.UserAgent.Value(i)
		addr := b.ClientAddr.Value(i)
		var u dims.UAIDs
		var ref, lang dims.ID
		if bd.ua.at != nil {
			u = bd.ua.ids[bd.ua.at[i]]
		} else {
			u = c.UserAgentIDs(ua)
		}
		if bd.referrer.at != nil {
			ref = bd.referrer.ids[bd.referrer.at[i]]
		} else {
			ref = c.ReferrerHostID(b.Referrer.Value(i))
		}
		if bd.language.at != nil {
			lang = bd.language.ids[bd.language.at[i]]
		} else {
			lang = c.LanguageID(b.AcceptLanguage.Value(i))
		}
		out = append(out, Click{
			Link:    link[j],
			Hour:    floorDiv(t, hourNS) * 3600,
			Day:     int32(floorDiv(t, dayNS)),
			Bot:     u.Bot,
			Visitor: c.Visitor(addr, ua),
			Dims: [numClickDims]dims.ID{
				dimReferrer: ref,
				dimCountry:  c.CountryID(addr),
				dimUA:       u.Kind,
				dimLanguage: lang,
			},
		})
	}
	return out
}

// values counts clicks per dimension value for one link and day: a short
// list while the link is quiet (most are), a hash table once it is busy. A
// dimension and value id are packed into one word (valueKey), so the list
// compares one integer and the table hashes one.
type values struct {
	list []valueCount
	m    *valueTable
}

// valueKey is a dimension (high 32 bits) and a value id (low 32 bits).
type valueKey uint64

func keyOf(dim uint8, v dims.ID) valueKey { return valueKey(dim)<<32 | valueKey(v) }

func (k valueKey) dim() uint8     { return uint8(k >> 32) }
func (k valueKey) value() dims.ID { return dims.ID(k) }

type valueCount struct {
	k valueKey
	n int64
}

const listMax = 24

// valueTable is a busy day's counts: an open-addressed hash table with
// linear probing, at most half full. A busy day's values number in the
// hundreds, and both stages spend much of their time counting them: in
// combine, four adds per click; in reduce, every value of every segment's
// day. Go's map costs a call, a hash of the key and a group probe for
// each; here an add is a multiply, a shift and, mostly, one compare
// (BenchmarkValueTable).
type valueTable struct {
	// slots hold keys plus one, so a zero key marks an empty slot.
	slots []valueCount
	shift uint8 // 64 - log2(len(slots))
	n     int
}

func newValueTable(capacity int) *valueTable {
	bits := uint8(3)
	for 1<<bits < 2*capacity {
		bits++
	}
	return &valueTable{slots: make([]valueCount, 1<<bits), shift: 64 - bits}
}

// add adds n to k's count.
func (t *valueTable) add(k valueKey, n int64) {
	mask := uint64(len(t.slots) - 1)
	stored := k + 1
	for i := uint64(stored) * 0x9e3779b97f4a7c15 >> t.shift; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.k == stored {
			s.n += n
			return
		}
		if s.k == 0 {
			s.k, s.n = stored, n
			if t.n++; 2*t.n > len(t.slots) {
				t.grow()
			}
			return
		}
	}
}

// grow doubles the table.
func (t *valueTable) grow() {
	old := t.slots
	t.slots = make([]valueCount, 2*len(old))
	t.shift--
	t.n = 0
	for _, s := range old {
		if s.k != 0 {
			t.add(s.k-1, s.n)
		}
	}
}

// each calls fn with every key and count.
func (t *valueTable) each(fn func(k valueKey, n int64)) {
	for _, s := range t.slots {
		if s.k != 0 {
			fn(s.k-1, s.n)
		}
	}
}

func (vs *values) add(dim uint8, v dims.ID, n int64) { vs.addKey(keyOf(dim, v), n) }

func (vs *values) addKey(k valueKey, n int64) {
	if vs.m != nil {
		vs.m.add(k, n)
		return
	}
	for i := range vs.list {
		if vs.list[i].k == k {
			vs.list[i].n += n
			return
		}
	}
	vs.insert(k, n)
}

// insert adds a key the list does not hold.
func (vs *values) insert(k valueKey, n int64) {
	if vs.m != nil {
		vs.m.add(k, n)
		return
	}
	if len(vs.list) < listMax {
		if vs.list == nil {
			// A day's first click brings one value of every dimension.
			vs.list = make([]valueCount, 0, numClickDims)
		}
		vs.list = append(vs.list, valueCount{k, n})
		return
	}
	vs.m = newValueTable(2 * listMax)
	for _, e := range vs.list {
		vs.m.add(e.k, e.n)
	}
	vs.list = nil
	vs.m.add(k, n)
}

// addClick counts one click's value of every dimension: one pass over the
// list finds all those it holds, instead of one pass per dimension.
func (vs *values) addClick(ids *[numClickDims]dims.ID) {
	if vs.m != nil {
		for dim, id := range ids {
			vs.m.add(keyOf(uint8(dim), id), 1)
		}
		return
	}
	const all = 1<<numClickDims - 1
	var found uint
	for i := range vs.list {
		e := &vs.list[i]
		if d := e.k.dim(); d < numClickDims && e.k.value() == ids[d] {
			e.n++
			found |= 1 << d
		}
	}
	if found == all {
		return
	}
	for dim, id := range ids {
		if found&(1<<dim) == 0 {
			vs.insert(keyOf(uint8(dim), id), 1)
		}
	}
}

func (vs *values) each(fn func(dim uint8, v dims.ID, n int64)) {
	for _, e := range vs.list {
		fn(e.k.dim(), e.k.value(), e.n)
	}
	if vs.m != nil {
		vs.m.each(func(k valueKey, n int64) { fn(k.dim(), k.value(), n) })
	}
}

// pendingMax is how many visitor hashes a day collects before it folds
// them into its set (sorted and deduplicated into the exact list, or
// inserted into the sketch): it bounds a busy day's memory, while a quiet
// day's hashes are only ever appended, then folded once, when the run is
// done with the day (Day.Visitors).
const pendingMax = 512

// DayHour is one hour's clicks within a day.
type DayHour struct {
	Hour         int64 // hour of the day, 0 to 23
	Clicks, Bots int64
}

// hours are a day's clicks by hour. They live in the day, not in a map of
// their own: a click then costs one lookup, not two, and a segment spans
// minutes, so a day in it almost always has a single hour.
type hours []DayHour

func (hs *hours) add(h, clicks, bots int64) {
	for i := range *hs {
		if e := &(*hs)[i]; e.Hour == h {
			e.Clicks += clicks
			e.Bots += bots
			return
		}
	}
	*hs = append(*hs, DayHour{h, clicks, bots})
}

// Day is one link's day: its clicks, by hour and by dimension value, and
// its visitors. Its values are ids of the run's shared value table.
//
// Visitor hashes are appended to pending, unsorted and possibly repeated,
// and folded into the set only every pendingMax hashes and at the end:
// adding them one by one to an exact list (a scan of it per click) or to
// a sparse HyperLogLog sketch per segment, then merging the segments'
// sketches in reduce, was a fifth of the aggregation's time (profile in
// bench/results/profiles-23).
type Day struct {
	Clicks, Bots int64
	hours        hours
	values       values
	visitors     sfsql.Visitors
	pending      []uint64
	// many are the visitors of a day past sfsql.ExactMax, until the run
	// asks for them or they make a dense sketch (visitors.go); nil
	// otherwise.
	many *sparseKeys

	// A new day's lists start in these, inside the day itself: a segment
	// has thousands of link-days, most with one click, and a day whose
	// counts are all in one place costs the stages one trip to memory
	// instead of four.
	firstValues  [numClickDims]valueCount
	firstHour    [1]DayHour
	firstVisitor [1]uint64
}

// addVisitor adds a visitor hash.
func (d *Day) addVisitor(h uint64) {
	d.pending = append(d.pending, h)
	if len(d.pending) >= pendingMax {
		d.flushVisitors()
	}
}

// flushVisitors folds the pending hashes into the set: an exact set of at
// most sfsql.ExactMax hashes, sorted, or beyond it their sparse sketch
// keys (visitors.go) and, once those would make a dense sketch, the
// sketch, as sfsql.Visitors.Add would have made of them one by one.
func (d *Day) flushVisitors() {
	p := d.pending
	if len(p) == 0 {
		return
	}
	v := &d.visitors
	d.pending = p[:0]
	if v.Sketch != nil {
		for _, h := range p {
			v.Sketch.InsertHash(h)
		}
		return
	}
	if d.many != nil {
		d.addMany(p)
		return
	}
	var all []uint64
	if len(v.Exact) == 0 {
		// The pending hashes become the set, in place; pending starts
		// anew should more come.
		all, d.pending = p, nil
	} else {
		all = append(v.Exact, p...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if len(all) <= sfsql.ExactMax {
		v.Exact = all
		return
	}
	v.Exact = nil
	d.many = &sparseKeys{}
	d.addMany(all)
	if d.pending == nil {
		d.pending = all[:0]
	}
}

// addMany adds hashes to the day's sparse sketch keys, and makes them the
// sketch once it would be dense. It encodes and sorts hs in place.
func (d *Day) addMany(hs []uint64) {
	d.many.add(hs)
	if d.many.dense() {
		d.visitors.Sketch, d.many = d.many.sketch(), nil
	}
}

// Visitors is the day's set of visitor hashes, every hash added so far
// folded in. The caller may merge into it.
func (d *Day) Visitors() *sfsql.Visitors {
	d.flushVisitors()
	if d.many != nil {
		d.visitors.Sketch, d.many = d.many.sketch(), nil
	}
	return &d.visitors
}

// Hours are the day's clicks by hour, each hour once. The caller must not
// modify them.
func (d *Day) Hours() []DayHour { return d.hours }

// AddDims adds counts by dimension and value name, as link_daily.dims
// holds a stored day's, to the day; s is the value table that names the
// day's values. A dimension this build does not count is skipped.
func (d *Day) AddDims(counts sfsql.Dims, s *dims.Shared) {
	for name, vals := range counts {
		dim, ok := StoredDimOf(name)
		if !ok {
			continue
		}
		for v, n := range vals {
			d.AddStored(dim, s.ID(v), n)
		}
	}
}

// StoredDim is a dimension of link_daily.dims that the day counts.
type StoredDim uint8

// StoredDimOf is the dimension link_daily.dims calls name (a string, or
// a decoder's bytes, compared without a copy); ok is false for one this
// build does not count, which AddDims skips.
func StoredDimOf[T ~string | ~[]byte](name T) (dim StoredDim, ok bool) {
	// A few comparisons of short strings, cheaper than hashing name
	// for a map: a stored day has several dimensions.
	for i, n := range dimNames {
		if n != "" && n == string(name) {
			return StoredDim(i), true
		}
	}
	return 0, false
}

// AddStored adds n clicks of value v (an id of the run's value table) in
// dim, as AddDims adds each of a stored day's counts: a caller that reads
// link_daily.dims itself adds them without a map of them in between.
func (d *Day) AddStored(dim StoredDim, v dims.ID, n int64) { d.values.add(uint8(dim), v, n) }

// hoursOf collects the days' hourly counts in a map.
func hoursOf(days map[DayKey]*Day) map[HourKey]HourCounts {
	out := map[HourKey]HourCounts{}
	for k, d := range days {
		for _, h := range d.hours {
			out[HourKey{k.Link(), int64(k.Day())*86400 + h.Hour*3600}] = HourCounts{h.Clicks, h.Bots}
		}
	}
	return out
}

func clicksOf(days map[DayKey]*Day) int64 {
	var n int64
	for _, d := range days {
		n += d.Clicks
	}
	return n
}

// daySlab is the slab the next days are cut from: one allocation per
// slabSize days instead of one per day spares the allocator and the
// collector.
type daySlab struct {
	days []Day
}

// slabSize is how many days one slab holds.
const slabSize = 256

// newDay returns a new, empty day whose values list has room for a click's
// values of every dimension, and whose hours and visitors room for one.
func (s *daySlab) newDay() *Day {
	if len(s.days) == 0 {
		s.days = make([]Day, slabSize)
	}
	d := &s.days[0]
	s.days = s.days[1:]
	// The full slice expressions cap the lists: one that grows past its
	// first entries moves out.
	d.values.list = d.firstValues[:0:numClickDims]
	d.hours = d.firstHour[:0:1]
	d.pending = d.firstVisitor[:0:1]
	return d
}

// combine counts clicks into days, new days cut from slab.
func combine(days map[DayKey]*Day, slab *daySlab, clicks []Click) {
	var last *Day
	var lastKey DayKey
	for i := range clicks {
		c := &clicks[i]
		dk := MakeDayKey(c.Link, c.Day)
		d := last
		if d == nil || dk != lastKey {
			if d = days[dk]; d == nil {
				d = slab.newDay()
				days[dk] = d
			}
			last, lastKey = d, dk
		}
		var bot int64
		if c.Bot {
			bot = 1
		}
		d.Clicks++
		d.Bots += bot
		d.hours.add((c.Hour-int64(c.Day)*86400)/3600, 1, bot)
		d.values.addClick(&c.Dims)
		d.addVisitor(c.Visitor)
	}
}

// eachSpread calls fn for every count of the day's values, a kind's count
// spread over its browser, OS and device (so a value may come more than
// once). names is the value table (Shared.Names).
func (d *Day) eachSpread(names []string, fn func(dim uint8, id dims.ID, n int64)) {
	d.values.each(func(dim uint8, id dims.ID, n int64) {
		if dim != dimUA {
			fn(dim, id, n)
			return
		}
		b, o, dev, _ := dims.KindParts(names[id])
		fn(dimBrowser, b, n)
		fn(dimOS, o, n)
		fn(dimDevice, dev, n)
	})
}

// Dims returns the day's clicks by dimension and value name.
func (d *Day) Dims(s *dims.Shared) sfsql.Dims {
	out := sfsql.Dims{}
	names := s.Names()
	d.eachSpread(names, func(dim uint8, id dims.ID, n int64) { out.Add(dimNames[dim], names[id], n) })
	return out
}

// AppendDimsJSON appends the day's dimension counts as the JSON object
// link_daily.dims holds, the same as json.Marshal(d.Dims(s)) but written
// directly: a run writes hundreds of thousands of them. names is the value
// table (Shared.Names).
func (d *Day) AppendDimsJSON(b []byte, names []string) []byte {
	var e DimsEncoder
	return e.Append(b, d, names)
}

// DimsEncoder is AppendDimsJSON with buffers kept from one day to the
// next: the per-day slices were most of the encoding's allocations
// (commit-cpu-before.pprof in bench/results/profiles-23). One goroutine
// uses it.
type DimsEncoder struct {
	byDim [numDims][]valueCount
}

// Append is AppendDimsJSON.
func (e *DimsEncoder) Append(b []byte, d *Day, names []string) []byte {
	byDim := &e.byDim
	for i := range byDim {
		byDim[i] = byDim[i][:0]
	}
	add := func(dim uint8, id dims.ID, n int64) {
		if dim != dimUA {
			byDim[dim] = append(byDim[dim], valueCount{keyOf(dim, id), n})
			return
		}
		br, o, dev, _ := dims.KindParts(names[id])
		byDim[dimBrowser] = append(byDim[dimBrowser], valueCount{keyOf(dimBrowser, br), n})
		byDim[dimOS] = append(byDim[dimOS], valueCount{keyOf(dimOS, o), n})
		byDim[dimDevice] = append(byDim[dimDevice], valueCount{keyOf(dimDevice, dev), n})
	}
	for _, v := range d.values.list {
		add(v.k.dim(), v.k.value(), v.n)
	}
	if d.values.m != nil {
		for _, v := range d.values.m.slots {
			if v.k != 0 {
				add((v.k - 1).dim(), (v.k - 1).value(), v.n)
			}
		}
	}
	// Kinds share browsers, OSes and devices, and stored days bring their
	// own counts of them: one entry per value.
	for _, dim := range []uint8{dimBrowser, dimOS, dimDevice} {
		byDim[dim] = sumEqual(byDim[dim])
	}
	b = append(b, '{')
	first := true
	for _, dim := range outDims {
		vals := byDim[dim]
		if len(vals) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, dimKeys[dim]...)
		if len(vals) <= sfsql.MaxDimValues {
			// Ids are distinct values: no two entries share a name.
			for i, v := range vals {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, names[v.k.value()])
				b = append(b, ':')
				b = strconv.AppendInt(b, v.n, 10)
			}
		} else {
			counts := sfsql.Dims{}
			for _, v := range vals {
				counts.Add("", names[v.k.value()], v.n)
			}
			i := 0
			for name, n := range counts[""] {
				if i > 0 {
					b = append(b, ',')
				}
				i++
				b = appendJSONString(b, name)
				b = append(b, ':')
				b = strconv.AppendInt(b, n, 10)
			}
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// sumEqual sorts counts by key and adds up those of equal keys.
func sumEqual(vals []valueCount) []valueCount {
	if len(vals) < 2 {
		return vals
	}
	slices.SortFunc(vals, func(a, b valueCount) int { return cmp.Compare(a.k, b.k) })
	out := vals[:1]
	for _, v := range vals[1:] {
		if last := &out[len(out)-1]; last.k == v.k {
			last.n += v.n
		} else {
			out = append(out, v)
		}
	}
	return out
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			b = fmt.Appendf(b, "\\u%04x", r)
		case r == utf8.RuneError:
			b = append(b, "\\ufffd"...)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// Partial is what one or more segments add to the stats, for the links of
// one partition.
type Partial struct {
	Days map[DayKey]*Day
}

// Hours are the partial's clicks by link and hour.
func (p *Partial) Hours() map[HourKey]HourCounts { return hoursOf(p.Days) }

// Clicks is the number of clicks the partial holds.
func (p *Partial) Clicks() int64 { return clicksOf(p.Days) }

// PartitionOf is the partition, of n, a link's aggregates go to. Ids are
// dense sequence numbers, so a multiplicative hash evens out runs of
// recent links.
func PartitionOf(link int64, n int) int {
	return int((uint64(link) * 0x9e3779b97f4a7c15 >> 32) % uint64(n))
}
