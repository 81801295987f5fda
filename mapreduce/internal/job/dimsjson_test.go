package job

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	"shortfleet/mapreduce/internal/aggregate"
	"shortfleet/mapreduce/internal/dims"
	sfsql "shortfleet/sql"
)

// dimsDocs are stored dimension documents, and whether they take
// encoding/json (slow) rather than the decoder's own reading.
var dimsDocs = []struct {
	doc  string
	slow bool
}{
	{`{}`, false},
	{`{"country":{"CH":3}}`, false},
	{`{"referrer":{"(direct)":5,"news.example":12},"country":{"CH":3,"--":1},"browser":{"Firefox":4},"language":{"de":2}}`, false},
	// jsonb's text, as rows written before 0005 read back.
	{`{"os": {"Linux": 2, "iOS": 7}, "device": {"mobile": 7, "desktop": 2}}`, false},
	{" {\n\t\"country\" : { \"CH\" : 3 } } \n", false},
	{`{"referrer":{}}`, false},
	{`{"country":{"CH":-1,"DE":9223372036854775807}}`, false},
	// 18 digits, added up here; 19, and beyond int64, left to strconv.
	{`{"country":{"CH":123456789012345678,"DE":-123456789012345678,"FR":-9223372036854775808,"IT":0,"AT":-0}}`, false},
	{`{"country":{"CH":9223372036854775808}}`, true},
	{`{"country":{"CH":-}}`, true},
	{`{"country":{"CH":01}}`, true},
	// A name in two dimensions is not a repeat; nor are a dimension this
	// build does not count and its values, which are skipped.
	{`{"browser":{"Other":1},"os":{"Other":2},"device":{"Other":3}}`, false},
	{`{"planet":{"Mars":9,"Mars":1},"planet":{},"country":{"CH":1}}`, false},
	// The slow path: escapes, non-ASCII, numbers that are not integers.
	{`{"referrer":{"a\"b.example":1,"\u00e9.example":2}}`, true},
	{`{"referrer":{"bücher.example":4}}`, true},
	{`{"country":{"CH":1e2}}`, true},
	{`{"country":{"CH":1.0}}`, true},
	{`{"country":null}`, true},
	// Repeats, where encoding/json keeps the last.
	{`{"country":{"CH":3},"country":{"DE":1}}`, true},
	{`{"country":{"CH":3,"DE":1,"CH":5}}`, true},
}

func testShared(t testing.TB) *dims.Shared {
	s, err := dims.NewShared(dims.Config{Salt: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addDimsJSON is what the decoder stands for: encoding/json, then
// Day.AddDims.
func addDimsJSON(d *aggregate.Day, b []byte, s *dims.Shared) error {
	m := sfsql.Dims{}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	d.AddDims(m, s)
	return nil
}

// sameDims compares two days' counts. Beyond sfsql.MaxDimValues values,
// which go to sfsql.OtherValue depends on the order they were added in,
// so only the dimension's total is compared.
func sameDims(a, b sfsql.Dims) bool {
	a, b = nonEmpty(a), nonEmpty(b)
	if len(a) != len(b) {
		return false
	}
	for dim, am := range a {
		bm := b[dim]
		if len(am) <= sfsql.MaxDimValues && len(bm) <= sfsql.MaxDimValues {
			if !reflect.DeepEqual(am, bm) {
				return false
			}
			continue
		}
		var sa, sb int64
		for _, n := range am {
			sa += n
		}
		for _, n := range bm {
			sb += n
		}
		if sa != sb {
			return false
		}
	}
	return true
}

// TestDimsDecoder adds stored dimension documents to a day, one decoder
// for all in turn (twice over, so its cache is warm and its memory of
// names seen is a document's own), and wants the counts that
// encoding/json and AddDims give another day, and the plain documents
// read without encoding/json.
func TestDimsDecoder(t *testing.T) {
	s := testShared(t)
	dec := newDimsDecoder(s)
	var got, want aggregate.Day
	for round := range 2 {
		for _, c := range dimsDocs {
			wantErr := addDimsJSON(&want, []byte(c.doc), s)
			slow := dec.slow
			err := dec.add(&got, []byte(c.doc))
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("%s: error %v, want %v", c.doc, err, wantErr)
			}
			if tookSlow := dec.slow > slow; tookSlow != c.slow {
				t.Errorf("%s: slow path %v, want %v", c.doc, tookSlow, c.slow)
			}
			if g, w := got.Dims(s), want.Dims(s); !sameDims(g, w) {
				t.Fatalf("round %d, after %s: got %v, want %v", round, c.doc, g, w)
			}
		}
	}
	before := got.Dims(s)
	for _, bad := range []string{``, `{`, `{"a":{"b":1}`, `{"a":{"b":1}}x`, `{"a":{"b":}}`, `[1]`, `{"a":{"b":01x}}`,
		`{"country":{"CH":1}`, `{"country":{"CH":1,"DE":2}} x`} {
		if err := dec.add(&got, []byte(bad)); err == nil {
			t.Fatalf("%q: no error", bad)
		}
		if g := got.Dims(s); !reflect.DeepEqual(g, before) {
			t.Fatalf("%q: counts %v after the error, want %v", bad, g, before)
		}
	}
}

// TestDimsDecoderCacheFull: a decoder whose cache is full empties it
// between documents and goes on with the same ids.
func TestDimsDecoderCacheFull(t *testing.T) {
	s := testShared(t)
	dec := newDimsDecoder(s)
	doc := []byte(`{"referrer":{"a.example":1,"b.example":2},"country":{"CH":3}}`)
	var got, want aggregate.Day
	for i := range 3 {
		if i == 1 {
			for j := len(dec.ids); j < cacheMax; j++ {
				dec.ids["filler"+strconv.Itoa(j)] = 0
			}
		}
		if err := dec.add(&got, doc); err != nil {
			t.Fatal(err)
		}
		if err := addDimsJSON(&want, doc, s); err != nil {
			t.Fatal(err)
		}
	}
	if g, w := got.Dims(s), want.Dims(s); !reflect.DeepEqual(g, w) || dec.slow != 0 || len(dec.ids) != 3 {
		t.Fatalf("got %v (%d slow, %d cached), want %v", g, dec.slow, len(dec.ids), w)
	}
}

// nonEmpty drops empty dimensions, which add nothing.
func nonEmpty(d sfsql.Dims) sfsql.Dims {
	out := sfsql.Dims{}
	for k, m := range d {
		if len(m) > 0 {
			out[k] = m
		}
	}
	return out
}

// FuzzDimsDecoder: whatever the input, the decoder fails where
// encoding/json does, and otherwise adds what encoding/json and AddDims
// add.
func FuzzDimsDecoder(f *testing.F) {
	for _, c := range dimsDocs {
		f.Add([]byte(c.doc))
	}
	s := testShared(f)
	dec := newDimsDecoder(s)
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want aggregate.Day
		wantErr := addDimsJSON(&want, b, s)
		err := dec.add(&got, b)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%q: error %v, encoding/json's %v", b, err, wantErr)
		}
		if g, w := got.Dims(s), want.Dims(s); !sameDims(g, w) {
			t.Fatalf("%q: got %v, want %v", b, g, w)
		}
	})
}
