package aggregate

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"golang.org/x/sync/errgroup"

	"shortfleet/logfmt"
	"shortfleet/logfmt/logfmttest"
	"shortfleet/mapreduce/internal/aggregate/aggregatetest"
	"shortfleet/mapreduce/internal/dims"
	sfsql "shortfleet/sql"
)

// t0 is when the test records begin, under the short name the tests use.
var t0 = aggregatetest.Start

func classifier(t testing.TB) *dims.Classifier { return newShared(t).NewClassifier() }

// newShared is a value table of the test dimensions, closed when the test
// ends.
func newShared(t testing.TB) *dims.Shared {
	t.Helper()
	s, err := dims.NewShared(aggregatetest.Dims(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// segmentOf writes records with a real writer, in batches of flushRows,
// and returns the sealed segment's bytes.
func segmentOf(t testing.TB, recs []logfmt.Record, flushRows int) []byte {
	t.Helper()
	dir := t.TempDir()
	w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "p", FlushRows: flushRows, QueueBatches: len(recs)/flushRows + 2}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		w.Append(&recs[i])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := logfmt.ReadManifest(dir)
	data, err := os.ReadFile(filepath.Join(dir, entries[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestMap(t *testing.T) {
	bot := aggregatetest.Click(t0, 2, 308)
	bot.UserAgent, bot.ClientAddr, bot.Referrer, bot.AcceptLanguage = []byte(aggregatetest.Googlebot), []byte("198.51.100.3"), nil, nil
	data := segmentOf(t, []logfmt.Record{
		aggregatetest.Click(t0, 1, 302),
		aggregatetest.Click(t0.Add(59*time.Minute+59*time.Second), 1, 301),
		aggregatetest.Click(t0.Add(time.Hour), 1, 307),
		bot,
		aggregatetest.Click(t0, 0, 404),               // not a link
		aggregatetest.Click(t0, 3, 410),               // disabled: not a click
		aggregatetest.Click(t0, 4, 503),               // error: not a click
		aggregatetest.Click(t0, 5, 200),               // not a redirect
		aggregatetest.Click(time.Unix(-1, 0), 6, 302), // before 1970 floors to the hour and day below
		aggregatetest.Click(t0, MaxLink+1, 302),       // no link can have this id
		aggregatetest.Click(t0, -7, 302),              // nor this one
	}, 3)
	rd, err := logfmt.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	c := classifier(t)
	var clicks []Click
	for rd.Next() {
		clicks = Map(rd.Batch(), c, clicks)
	}
	h, d := t0.Unix(), int32(t0.Unix()/86400)
	human := Tuple{Browser: "Chrome", OS: "Windows", Device: "desktop", Referrer: "news.example", Country: "CH", Language: "de"}
	bots := Tuple{Browser: "Googlebot", OS: "Other", Device: "bot", Referrer: "(direct)", Country: "JP", Language: "(none)"}
	type named struct {
		Link, Hour int64
		Day        int32
		Bot        bool
		Dims       Tuple
	}
	want := []named{{1, h, d, false, human}, {1, h, d, false, human}, {1, h + 3600, d, false, human}, {2, h, d, true, bots}, {6, -3600, -1, false, human}}
	if len(clicks) != len(want) {
		t.Fatalf("%d clicks, want %d: %+v", len(clicks), len(want), clicks)
	}
	for i := range want {
		cl := clicks[i]
		got := named{cl.Link, cl.Hour, cl.Day, cl.Bot, nameOf(c, cl.Dims)}
		if got != want[i] {
			t.Errorf("click %d:\n got %+v\nwant %+v", i, got, want[i])
		}
	}
	if clicks[0].Visitor != clicks[1].Visitor || clicks[0].Visitor == clicks[3].Visitor {
		t.Error("visitor hashes: the same client must hash alike, different ones not")
	}
}

// Tuple is a click's dimension values, named.
type Tuple struct {
	Browser, OS, Device, Referrer, Country, Language string
}

func nameOf(c *dims.Classifier, d [numClickDims]dims.ID) Tuple {
	b, o, dev, ok := dims.KindParts(c.Name(d[dimUA]))
	if !ok {
		return Tuple{Browser: "not a kind"}
	}
	return Tuple{Browser: c.Name(b), OS: c.Name(o), Device: c.Name(dev),
		Referrer: c.Name(d[dimReferrer]), Country: c.Name(d[dimCountry]), Language: c.Name(d[dimLanguage])}
}

// testClassifier makes the ids the Combine, Partition and Reduce tests
// use; testClassifierShared names them.
var (
	testClassifier       *dims.Classifier
	testClassifierShared *dims.Shared
)

func idTuple(t testing.TB, country string) [numClickDims]dims.ID {
	if testClassifier == nil {
		s, err := dims.NewShared(aggregatetest.Dims(t))
		if err != nil {
			t.Fatal(err)
		}
		testClassifierShared, testClassifier = s, s.NewClassifier()
	}
	addr := map[string]string{"CH": "192.0.2.1", "JP": "198.51.100.1"}[country]
	c := testClassifier
	u := c.UserAgentIDs(aggregatetest.Chrome)
	return [numClickDims]dims.ID{dimReferrer: c.ReferrerHostID(""), dimCountry: c.CountryID(addr),
		dimUA: u.Kind, dimLanguage: c.LanguageID("")}
}

// click is a classified click; visitor is mixed into a 64-bit hash, as
// real visitor hashes are (a sketch reads the hash's high bits).
func click(t testing.TB, link, hour int64, bot bool, visitor uint64, country string) Click {
	return Click{Link: link, Hour: hour * 3600, Day: int32(hour / 24), Bot: bot, Visitor: visitor * 0x9e3779b97f4a7c15, Dims: idTuple(t, country)}
}

// TestDayKey checks that a key gives back the link and day it was made
// of, at the ends of their ranges, and that keys order as (link, day).
func TestDayKey(t *testing.T) {
	// The days of the int64 nanosecond clock's first and last instants,
	// of 1970 and around it, and of today.
	first, last := int32(floorDiv(math.MinInt64, dayNS)), int32(floorDiv(math.MaxInt64, dayNS))
	days := []int32{first, -1, 0, 1, int32(t0.Unix() / 86400), last}
	var prev DayKey
	for _, link := range []int64{1, 2, 1 << 40, MaxLink} {
		for _, day := range days {
			k := MakeDayKey(link, day)
			if k.Link() != link || k.Day() != day {
				t.Fatalf("(%d, %d) came back as (%d, %d)", link, day, k.Link(), k.Day())
			}
			if k <= prev {
				t.Fatalf("(%d, %d) does not sort after the key before it", link, day)
			}
			prev = k
		}
	}
}

// TestDayOf: an instant's day floors, before 1970 too, and is the day Map
// gives its click.
func TestDayOf(t *testing.T) {
	for _, c := range []struct {
		ns   int64
		want int32
	}{{0, 0}, {dayNS - 1, 0}, {dayNS, 1}, {-1, -1}, {-dayNS, -1}, {-dayNS - 1, -2}, {t0.UnixNano(), int32(t0.Unix() / 86400)}} {
		if got := DayOf(c.ns); got != c.want {
			t.Errorf("DayOf(%d) = %d, want %d", c.ns, got, c.want)
		}
	}
}

// BenchmarkDayKeyMap is the evidence for packing DayKey into one word:
// a segment's worth of day lookups and inserts (1 M clicks over 300 K
// link-days, as Combine makes them) in a map keyed by a struct of link and
// day, and by the packed key.
func BenchmarkDayKeyMap(b *testing.B) {
	links := make([]int64, 1_000_000)
	x := uint64(1)
	for i := range links {
		x = x*6364136223846793005 + 1442695040888963407
		links[i] = int64(x>>44)%300_000 + 1
	}
	day := int32(t0.Unix() / 86400)
	type structKey struct {
		Link int64
		Day  int32
	}
	b.Run("struct", func(b *testing.B) {
		for b.Loop() {
			m := map[structKey]*Day{}
			for _, l := range links {
				if k := (structKey{l, day}); m[k] == nil {
					m[k] = &Day{}
				}
			}
		}
	})
	b.Run("packed", func(b *testing.B) {
		for b.Loop() {
			m := map[DayKey]*Day{}
			for _, l := range links {
				if k := MakeDayKey(l, day); m[k] == nil {
					m[k] = &Day{}
				}
			}
		}
	})
}

// TestValueTable: the table counts what a Go map counts, through its
// growth, for keys of every dimension, zero included.
func TestValueTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, distinct := range []int{1, 7, 100, 5000} {
		tab, want := newValueTable(2*listMax), map[valueKey]int64{}
		for range 20 * distinct {
			k := keyOf(uint8(rng.IntN(numDims)), dims.ID(rng.IntN(distinct)))
			n := int64(rng.IntN(3))
			tab.add(k, n)
			want[k] += n
		}
		got := map[valueKey]int64{}
		tab.each(func(k valueKey, n int64) {
			if _, dup := got[k]; dup {
				t.Fatalf("key %x twice", k)
			}
			got[k] = n
		})
		if !reflect.DeepEqual(got, want) || tab.n != len(want) || 2*tab.n > len(tab.slots) {
			t.Fatalf("%d distinct: %d keys in %d slots, differ from the map's %d: %v", distinct, tab.n, len(tab.slots), len(want), !reflect.DeepEqual(got, want))
		}
	}
}

// BenchmarkValueTable is the evidence for valueTable: a busy day's adds
// (four per click, over 200 values) in it and in a Go map.
func BenchmarkValueTable(b *testing.B) {
	keys := make([]valueKey, 4096)
	x := uint64(1)
	for i := range keys {
		x = x*6364136223846793005 + 1442695040888963407
		keys[i] = keyOf(uint8(i%numClickDims), dims.ID(x>>58)+dims.ID(i%numClickDims)*50)
	}
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			m := make(map[valueKey]int64, 2*listMax)
			for _, k := range keys {
				m[k]++
			}
		}
	})
	b.Run("table", func(b *testing.B) {
		for b.Loop() {
			t := newValueTable(2 * listMax)
			for _, k := range keys {
				t.add(k, 1)
			}
		}
	})
}

func TestCombine(t *testing.T) {
	p := NewSegmentPartial()
	Combine(p, []Click{click(t, 1, 0, false, 7, "CH"), click(t, 1, 0, true, 8, "CH"), click(t, 1, 1, false, 7, "JP"), click(t, 2, 0, false, 9, "CH")})
	Combine(p, []Click{click(t, 1, 0, false, 7, "CH")})
	if got := p.Hours()[HourKey{1, 0}]; got != (HourCounts{Clicks: 3, Bots: 1}) {
		t.Errorf("link 1 hour 0: %+v", got)
	}
	if got := p.Hours()[HourKey{1, 3600}]; got != (HourCounts{Clicks: 1}) {
		t.Errorf("link 1 hour 1: %+v", got)
	}
	d := p.Days[MakeDayKey(1, 0)]
	if d.Clicks != 4 || d.Bots != 1 {
		t.Errorf("link 1 day 0: %d clicks, %d bots", d.Clicks, d.Bots)
	}
	ch := idTuple(t, "CH")[dimCountry]
	var n int64
	d.values.each(func(dim uint8, id dims.ID, c int64) {
		if dim == dimCountry && id == ch {
			n = c
		}
	})
	if n != 3 {
		t.Errorf("link 1 clicks from CH: %d, want 3", n)
	}
	if p.Clicks() != 5 {
		t.Errorf("clicks %d, want 5", p.Clicks())
	}
	if u := d.Visitors().Count(); u != 2 {
		t.Errorf("link 1 uniques %d, want 2", u)
	}
	if got, want := d.Hours(), []DayHour{{Hour: 0, Clicks: 3, Bots: 1}, {Hour: 1, Clicks: 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("link 1 day 0 by hour: %+v, want %+v", got, want)
	}
}

// TestAddDims: a stored day's counts, by dimension and value name, add to
// the day's own; a dimension this build does not count is skipped.
func TestAddDims(t *testing.T) {
	s := testClassifierSharedFor(t)
	p := NewSegmentPartial()
	Combine(p, []Click{click(t, 1, 0, false, 7, "CH"), click(t, 1, 0, false, 8, "JP")})
	d := p.Days[MakeDayKey(1, 0)]
	d.AddDims(sfsql.Dims{sfsql.DimCountry: {"CH": 5, "BR": 1}, sfsql.DimBrowser: {"Chrome": 6}, "planet": {"Mars": 9}}, s)
	got := d.Dims(s)
	if got[sfsql.DimCountry]["CH"] != 6 || got[sfsql.DimCountry]["JP"] != 1 || got[sfsql.DimCountry]["BR"] != 1 ||
		got[sfsql.DimBrowser]["Chrome"] != 8 || got["planet"] != nil {
		t.Fatalf("dims %v", got)
	}
}

// TestStoredDimOf: every dimension link_daily.dims holds is one AddDims
// counts, under its own index; other names, and the user agents' kind,
// which has no name, are none.
func TestStoredDimOf(t *testing.T) {
	for _, name := range sfsql.DimNames {
		dim, ok := StoredDimOf([]byte(name))
		if want := slices.Index(dimNames[:], name); !ok || want < 0 || int(dim) != want {
			t.Errorf("%q: dimension %d, %v; want %d", name, dim, ok, want)
		}
		if d, ok := StoredDimOf(name); !ok || d != dim {
			t.Errorf("%q as a string: dimension %d, %v; as bytes %d", name, d, ok, dim)
		}
	}
	for _, name := range []string{"", "planet", "Country"} {
		if dim, ok := StoredDimOf([]byte(name)); ok {
			t.Errorf("%q: dimension %d", name, dim)
		}
	}
}

// TestValuesGrow: a busy link outgrows the small list of values, and
// nothing is lost on the way.
func TestValuesGrow(t *testing.T) {
	var vs values
	for i := range 1000 {
		vs.add(uint8(i%2), dims.ID(i%100), 1)
	}
	total, distinct := int64(0), 0
	vs.each(func(dim uint8, v dims.ID, n int64) { total += n; distinct++ })
	if total != 1000 || distinct != 100 || vs.m == nil {
		t.Fatalf("values: %d clicks over %d values (map %v)", total, distinct, vs.m != nil)
	}
}

// TestAddClick: counting a click's values in one pass over the list
// counts what one add per dimension counts, through the list's growth
// into a map.
func TestAddClick(t *testing.T) {
	var one, each values
	for i := range 500 {
		ids := [numClickDims]dims.ID{dims.ID(i % 7), dims.ID(i % 3), dims.ID(i % 11), dims.ID(i % 40)}
		one.addClick(&ids)
		for dim, id := range ids {
			each.add(uint8(dim), id, 1)
		}
		if i == 2 && one.m != nil {
			t.Fatal("a quiet day's values went to a map")
		}
	}
	got, want := map[valueKey]int64{}, map[valueKey]int64{}
	one.each(func(dim uint8, v dims.ID, n int64) { got[keyOf(dim, v)] += n })
	each.each(func(dim uint8, v dims.ID, n int64) { want[keyOf(dim, v)] += n })
	if !reflect.DeepEqual(got, want) || one.m == nil {
		t.Fatalf("got %v, want %v (map %v)", got, want, one.m != nil)
	}
}

// TestDimsJSON: the hand-written JSON is what encoding/json makes of Dims,
// names with quotes, controls and invalid UTF-8 included, and with
// browser, OS and device counted both by kind (a run's clicks) and one by
// one (a stored day's), which add up.
func TestDimsJSON(t *testing.T) {
	s := testClassifierSharedFor(t)
	c := s.NewClassifier()
	d := &Day{}
	names := []string{"plain", `q"uote`, "back\\slash", "tab\there", "bad\xffutf8", "émoji 🎉", "line\u2028sep"}
	for i, name := range names {
		dim := []uint8{dimReferrer, dimCountry, dimLanguage, dimBrowser, dimOS, dimDevice}[i%6]
		d.values.add(dim, s.ID(name), int64(i+1))
	}
	chrome, firefox := c.UserAgentIDs(aggregatetest.Chrome), c.UserAgentIDs("Mozilla/5.0 (Windows NT 10.0; rv:133.0) Gecko/20100101 Firefox/133.0")
	d.values.add(dimUA, chrome.Kind, 10)
	d.values.add(dimUA, firefox.Kind, 100)
	d.values.add(dimBrowser, chrome.Browser, 1000) // stored
	d.values.add(dimOS, firefox.OS, 1000)          // stored; Windows, as Chrome's is
	var got, want sfsql.Dims
	if err := json.Unmarshal(d.AppendDimsJSON(nil, s.Names()), &got); err != nil {
		t.Fatalf("invalid JSON %s: %v", d.AppendDimsJSON(nil, s.Names()), err)
	}
	wantJSON, _ := json.Marshal(d.Dims(s))
	json.Unmarshal(wantJSON, &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got[sfsql.DimBrowser]["Chrome"] != 1010 || got[sfsql.DimBrowser]["Firefox"] != 100 ||
		got[sfsql.DimOS]["Windows"] != 1110 || got[sfsql.DimDevice]["desktop"] != 110 {
		t.Fatalf("kinds and stored counts: %v", got)
	}
	for dim, vals := range got {
		for v := range vals {
			if _, _, _, ok := dims.KindParts(v); ok {
				t.Fatalf("%s has a kind's entry %q", dim, v)
			}
		}
	}
}

func testClassifierSharedFor(t *testing.T) *dims.Shared {
	idTuple(t, "CH")
	return testClassifierShared
}

func TestPartition(t *testing.T) {
	p := NewSegmentPartial()
	var clicks []Click
	for link := int64(1); link <= 1000; link++ {
		for range link % 3 {
			clicks = append(clicks, click(t, link, 0, false, uint64(link), "CH"))
		}
		clicks = append(clicks, click(t, link, 1, true, 1, "JP"))
	}
	Combine(p, clicks)
	parts := Partition(p, 8)
	owner := map[int64]int{}
	var total, dayTotal int64
	for i, part := range parts {
		if len(part.Hours()) < 100 {
			t.Errorf("partition %d holds %d hours of 1,667: uneven", i, len(part.Hours()))
		}
		for k, v := range part.Hours() {
			if o, ok := owner[k.Link]; ok && o != i {
				t.Fatalf("link %d in partitions %d and %d", k.Link, o, i)
			}
			owner[k.Link] = i
			if o := PartitionOf(k.Link, len(parts)); o != i {
				t.Fatalf("link %d in partition %d, PartitionOf says %d", k.Link, i, o)
			}
			total += v.Clicks
			if part.Days[MakeDayKey(k.Link, 0)] == nil {
				t.Fatalf("link %d's day is not with its hours", k.Link)
			}
		}
		for _, d := range part.Days {
			dayTotal += d.Clicks
			if got := d.Dims(testClassifierShared)[sfsql.DimCountry]["JP"]; got != 1 {
				t.Fatalf("a day with %d JP clicks, want 1", got)
			}
		}
	}
	if total != int64(len(clicks)) || dayTotal != total {
		t.Fatalf("partitions hold %d clicks by hour and %d by day, want %d", total, dayTotal, len(clicks))
	}
}

func TestReduce(t *testing.T) {
	a, b := NewSegmentPartial(), NewSegmentPartial()
	Combine(a, []Click{click(t, 1, 0, false, 1, "CH"), click(t, 1, 0, false, 2, "CH")})
	Combine(b, []Click{click(t, 1, 0, true, 2, "JP"), click(t, 1, 0, false, 3, "CH")})
	got, err := Reduce([]*Partial{Partition(a, 1)[0], Partition(b, 1)[0], NewPartial()})
	if err != nil {
		t.Fatal(err)
	}
	if h := got.Hours()[HourKey{1, 0}]; h != (HourCounts{Clicks: 4, Bots: 1}) {
		t.Errorf("hours %+v", h)
	}
	d := got.Days[MakeDayKey(1, 0)]
	// Visitor 2 was in both: three visitors, not four.
	if u := d.Visitors().Count(); u != 3 {
		t.Errorf("uniques %d, want 3", u)
	}
	dm := d.Dims(testClassifierShared)
	if d.Clicks != 4 || d.Bots != 1 || dm[sfsql.DimCountry]["CH"] != 3 || dm[sfsql.DimCountry]["JP"] != 1 {
		t.Errorf("day %+v dims %v", d, dm)
	}
	if empty, _ := Reduce(nil); len(empty.Hours()) != 0 {
		t.Error("reduce of nothing is not empty")
	}
}

func TestMapCombine(t *testing.T) {
	var recs []logfmt.Record
	for i := range 100 {
		recs = append(recs, aggregatetest.Click(t0.Add(time.Duration(i)*time.Minute), int64(i%3+1), 302))
	}
	recs = append(recs, aggregatetest.Click(t0, 0, 404))
	p, n, err := MapCombine(segmentOf(t, recs, 7), classifier(t))
	if err != nil || n != 101 {
		t.Fatalf("%d records, %v", n, err)
	}
	if p.Clicks() != 100 || len(p.Hours()) != 6 { // 3 links x 2 hours
		t.Fatalf("%d clicks over %d hours", p.Clicks(), len(p.Hours()))
	}
}

// TestMapCombineFiltered: only the clicks keep accepts are combined, and
// every record is counted.
func TestMapCombineFiltered(t *testing.T) {
	var recs []logfmt.Record
	for i := range 100 {
		recs = append(recs, aggregatetest.Click(t0.Add(time.Duration(i)*time.Minute), int64(i%3+1), 302))
	}
	data, c := segmentOf(t, recs, 7), classifier(t)
	p, n, err := MapCombineFiltered(data, c, func(cl Click) bool { return cl.Link == 2 })
	if err != nil || n != 100 {
		t.Fatalf("%d records, %v", n, err)
	}
	if len(p.Days) != 1 || p.Days[MakeDayKey(2, int32(t0.Unix()/86400))].Clicks != 33 {
		t.Fatalf("%d days, %d clicks; want link 2's 33", len(p.Days), p.Clicks())
	}
}

// benchRecords makes n realistic records: links Zipf-like, a mix of
// browsers and bots, referrers, languages and addresses.
func benchRecords(n int) []logfmt.Record {
	uas := [][]byte{[]byte(aggregatetest.Chrome), []byte(aggregatetest.Googlebot),
		[]byte("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
		[]byte("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")}
	refs := [][]byte{nil, []byte("https://www.google.com/"), []byte("https://t.co/x"), []byte("https://news.ycombinator.com/item?id=1")}
	langs := [][]byte{[]byte("en-US,en;q=0.9"), []byte("de-CH,de;q=0.9"), nil, []byte("ja-JP")}
	recs := make([]logfmt.Record, n)
	for i := range recs {
		addr := []byte{'1', '9', '2', '.', '0', '.', '2', '.', byte('0' + i%10)}
		recs[i] = logfmt.Record{
			Time: t0.Add(time.Duration(i) * time.Millisecond).UnixNano(), LinkID: int64(1 + (i*i)%5000), Status: 302,
			ClientAddr: addr, UserAgent: uas[i%len(uas)], Referrer: refs[i%len(refs)], AcceptLanguage: langs[i%len(langs)],
			Headers: []logfmt.Header{{Name: []byte("Accept"), Value: []byte("text/html")}},
		}
	}
	return recs
}

// BenchmarkMapCombine: records per second through map and combine with
// every dimension, beside BenchmarkDecode, the Arrow reader alone.
func BenchmarkMapCombine(b *testing.B) {
	recs := benchRecords(50_000)
	data := segmentOf(b, recs, 4096)
	c := classifier(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := MapCombine(data, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkDecode(b *testing.B) {
	recs := benchRecords(50_000)
	data := segmentOf(b, recs, 4096)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		rd, err := logfmt.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for rd.Next() {
		}
		rd.Release()
	}
	b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkLocalSegments measures, on every core, records per second from
// segments already read from local disk: "decode", "decode_columns" and
// "decode_arrow" only decode them (whole with logfmt's reader, the map's
// columns only, whole with arrow-go's plain reader); "aggregate" and
// "first_run" map each segment whole and fold it into the run's totals
// (Scratch.MapSegment, Totals.Fold), as the job does, with every
// dimension, with warm and with empty classifier caches. make
// bench-mapreduce reports them side by side.
func BenchmarkLocalSegments(b *testing.B) {
	segs, err := aggregatetest.LocalSegments()
	if err != nil {
		b.Fatal(err)
	}
	cfg := aggregatetest.Dims(b)
	shared, err := dims.NewShared(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer shared.Close()
	workers := runtime.GOMAXPROCS(0)
	each := func(fn func(data []byte, w int) error) error {
		var g errgroup.Group
		next := make(chan []byte, len(segs))
		for _, s := range segs {
			next <- s
		}
		close(next)
		for w := range workers {
			g.Go(func() error {
				for s := range next {
					if err := fn(s, w); err != nil {
						return err
					}
				}
				return nil
			})
		}
		return g.Wait()
	}
	// decode is each segment read whole and in place by logfmt's reader;
	// decode_arrow by arrow-go's plain IPC reader, which decompresses
	// buffers itself (see logfmt.BenchmarkDecode).
	decode := func(b *testing.B, read func(data []byte) (int, error)) {
		var n atomic.Int64
		for b.Loop() {
			if err := each(func(data []byte, _ int) error {
				rows, err := read(data)
				n.Add(int64(rows))
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "records/s")
	}
	count := func(rd *logfmt.Reader, err error) (int, error) {
		if err != nil {
			return 0, err
		}
		defer rd.Release()
		n := 0
		for rd.Next() {
			n += rd.Batch().Len()
		}
		return n, rd.Err()
	}
	b.Run("decode", func(b *testing.B) {
		decode(b, func(data []byte) (int, error) { return count(logfmt.NewBytesReader(data)) })
	})
	// decode_columns reads only the columns the map reads, as MapCombine
	// does.
	b.Run("decode_columns", func(b *testing.B) {
		decode(b, func(data []byte) (int, error) { return count(logfmt.NewColumnsReader(data, mapColumns...)) })
	})
	b.Run("decode_arrow", func(b *testing.B) {
		decode(b, func(data []byte) (int, error) {
			rd, err := ipc.NewReader(bytes.NewReader(data))
			if err != nil {
				return 0, err
			}
			defer rd.Release()
			n := 0
			for rd.Next() {
				n += int(rd.RecordBatch().NumRows())
			}
			return n, rd.Err()
		})
	})
	// aggregate is one pass, as a run of the job: each worker maps a
	// segment whole into its scratch and folds it into the run's totals
	// of 8 partitions.
	type worker struct {
		c *dims.Classifier
		s Scratch
	}
	aggregate := func(b *testing.B, workers []worker) int64 {
		var n atomic.Int64
		totals := NewTotals(8)
		if err := each(func(data []byte, w int) error {
			recs, err := workers[w].s.MapSegment(data, workers[w].c, nil)
			if err != nil {
				return err
			}
			totals.Fold(&workers[w].s)
			n.Add(recs)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		totals.Partials()
		return n.Load()
	}
	newWorkers := func() []worker {
		ws := make([]worker, workers)
		for i := range ws {
			ws[i].c = shared.NewClassifier()
		}
		return ws
	}
	// "aggregate" is the daemon's usual run: its classifiers (and map
	// buffers) are kept from run to run, so their caches hold the user
	// agents, referrers and networks the last run saw; one untimed pass
	// fills them.
	b.Run("aggregate", func(b *testing.B) {
		ws := newWorkers()
		aggregate(b, ws)
		var n int64
		for b.Loop() {
			n += aggregate(b, ws)
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	})
	// "first_run" is a daemon's first run after it starts: empty caches.
	b.Run("first_run", func(b *testing.B) {
		var n int64
		for b.Loop() {
			n += aggregate(b, newWorkers())
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	})
}

// TestMapCombineVersions: a sealed segment (version 4, 2 before issue
// 21), its strings dictionary-encoded and classified once per distinct
// value, gives the same clicks, hours, dimensions and visitors as the same
// records in a plain segment (version 3, 1 before), classified row by row.
func TestMapCombineVersions(t *testing.T) {
	g := logfmttest.New(1, 2000, t0, 5*time.Minute)
	recs := make([]logfmt.Record, 20_000)
	for i := range recs {
		g.Next(&recs[i], i, len(recs))
		recs[i] = cloneRecord(recs[i])
	}
	v2 := segmentOf(t, recs, 500)
	// The same batches, strings spelled out, written as the open version.
	v1 := inBatches(t, v2, 0)
	shared, err := dims.NewShared(aggregatetest.Dims(t))
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	c := shared.NewClassifier()
	var parts [2]*SegmentPartial
	for i, data := range [][]byte{v1, v2} {
		rd, err := logfmt.NewBytesReader(data)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{logfmt.Version, logfmt.SealedVersion}[i]; rd.Version() != want {
			t.Fatalf("segment %d has version %d, want %d", i, rd.Version(), want)
		}
		rd.Release()
		p, n, err := MapCombine(data, c)
		if err != nil || n != int64(len(recs)) {
			t.Fatalf("version %d: %d records, err %v", i+1, n, err)
		}
		parts[i] = p
	}
	if parts[0].Clicks() < 15_000 || !reflect.DeepEqual(parts[0].Hours(), parts[1].Hours()) {
		t.Fatalf("clicks by hour differ: %d against %d clicks", parts[0].Clicks(), parts[1].Clicks())
	}
	for k, d1 := range parts[0].Days {
		d2 := parts[1].Days[k]
		if d2 == nil || !reflect.DeepEqual(d1.Dims(shared), d2.Dims(shared)) || d1.Visitors().Count() != d2.Visitors().Count() {
			t.Fatalf("link %d day %d differs between versions", k.Link(), k.Day())
		}
	}
	if len(parts[0].Days) != len(parts[1].Days) {
		t.Fatalf("%d days against %d", len(parts[0].Days), len(parts[1].Days))
	}
}

// cloneRecord copies a record out of the generator's reused buffers.
func cloneRecord(r logfmt.Record) logfmt.Record {
	r.ClientAddr, r.Path, r.UserAgent = bytes.Clone(r.ClientAddr), bytes.Clone(r.Path), bytes.Clone(r.UserAgent)
	r.Referrer, r.AcceptLanguage = bytes.Clone(r.Referrer), bytes.Clone(r.AcceptLanguage)
	r.Headers = slices.Clone(r.Headers)
	return r
}

// TestNonClicksNotClassified: values that only non-clicks have (a
// scanner's 404s) stay out of the run's value table, dictionary-encoded
// or not.
func TestNonClicksNotClassified(t *testing.T) {
	g := logfmttest.New(2, 100, t0, time.Minute)
	recs := make([]logfmt.Record, 200)
	for i := range recs {
		g.Next(&recs[i], i, len(recs))
		recs[i] = cloneRecord(recs[i])
		if i%10 == 0 {
			recs[i].Status, recs[i].LinkID = 404, 0
			recs[i].Referrer = []byte("https://scanner.example/probe")
		}
	}
	shared, err := dims.NewShared(aggregatetest.Dims(t))
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	p, n, err := MapCombine(segmentOf(t, recs, 50), shared.NewClassifier())
	if err != nil || n != 200 || p.Clicks() == 0 {
		t.Fatalf("%d records, %d clicks, err %v", n, p.Clicks(), err)
	}
	if slices.Contains(shared.Names(), "scanner.example") {
		t.Fatal("a referrer only 404s had is in the value table")
	}
	if !slices.ContainsFunc(shared.Names(), func(n string) bool { return strings.HasSuffix(n, ".example") && n != "scanner.example" }) {
		t.Fatalf("clicks' referrers missing from the value table: %q", shared.Names())
	}
}

// TestMapCombineOldAndNewTestdata: the job maps the sealed segments of
// every version logfmt keeps testdata of (2, before the rule column, and
// 4, with it), holding the same records, to the same clicks by hour.
func TestMapCombineOldAndNewTestdata(t *testing.T) {
	shared, err := dims.NewShared(aggregatetest.Dims(t))
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	var hours []map[HourKey]HourCounts
	for _, name := range []string{"v2.arrows", "v4.arrows"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "logfmt", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		p, n, err := MapCombine(data, shared.NewClassifier())
		if err != nil || n != 20 {
			t.Fatalf("%s: %d records, %v", name, n, err)
		}
		hours = append(hours, p.Hours())
	}
	if len(hours[0]) == 0 || !reflect.DeepEqual(hours[0], hours[1]) {
		t.Fatalf("clicks by hour differ: %v against %v", hours[0], hours[1])
	}
}
