package job

import (
	"encoding/json"
	"reflect"
	"testing"

	sfsql "shortfleet/sql"
)

var dimsDocs = []string{
	`{}`,
	`{"country":{"CH":3}}`,
	`{"referrer":{"(direct)":5,"news.example":12},"country":{"CH":3,"--":1},"browser":{"Firefox":4},"language":{"de":2}}`,
	// jsonb's text, as rows written before 0005 read back.
	`{"os": {"Linux": 2, "iOS": 7}, "device": {"mobile": 7, "desktop": 2}}`,
	" {\n\t\"country\" : { \"CH\" : 3 } } \n",
	`{"referrer":{}}`,
	`{"country":{"CH":-1,"DE":9223372036854775807}}`,
	// 18 digits, added up here; 19, and beyond int64, left to strconv.
	`{"country":{"CH":123456789012345678,"DE":-123456789012345678,"FR":-9223372036854775808,"IT":0,"AT":-0}}`,
	`{"country":{"CH":9223372036854775808}}`,
	`{"country":{"CH":-}}`,
	// The slow path: escapes, non-ASCII, numbers that are not integers.
	`{"referrer":{"a\"b.example":1,"\u00e9.example":2}}`,
	`{"referrer":{"bücher.example":4}}`,
	`{"country":{"CH":1e2}}`,
	`{"country":{"CH":1.0}}`,
	`{"country":null}`,
	`{"country":{"CH":3},"country":{"DE":1}}`,
}

// TestDimsDecoder reads stored dimension documents, one decoder for all in
// turn (its maps are reused), and wants what encoding/json reads. Without
// the clearing of the reused maps, a document would show the previous
// one's counts; without the slow path, escaped names would be wrong.
func TestDimsDecoder(t *testing.T) {
	var dec dimsDecoder
	for _, doc := range append(dimsDocs, dimsDocs...) {
		want := sfsql.Dims{}
		wantErr := json.Unmarshal([]byte(doc), &want)
		got, err := dec.decode([]byte(doc))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s: error %v, want %v", doc, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(nonEmpty(got), nonEmpty(want)) {
			t.Fatalf("%s: got %v, want %v", doc, got, want)
		}
	}
	for _, bad := range []string{``, `{`, `{"a":{"b":1}`, `{"a":{"b":1}}x`, `{"a":{"b":}}`, `[1]`, `{"a":{"b":01x}}`} {
		if _, err := dec.decode([]byte(bad)); err == nil {
			t.Fatalf("%q: no error", bad)
		}
	}
}

// nonEmpty drops empty dimensions, which the reused decoder keeps and
// which add nothing.
func nonEmpty(d sfsql.Dims) sfsql.Dims {
	out := sfsql.Dims{}
	for k, m := range d {
		if len(m) > 0 {
			out[k] = m
		}
	}
	return out
}

func FuzzDimsDecoder(f *testing.F) {
	for _, doc := range dimsDocs {
		f.Add([]byte(doc))
	}
	var dec dimsDecoder
	f.Fuzz(func(t *testing.T, b []byte) {
		want := sfsql.Dims{}
		if json.Unmarshal(b, &want) != nil {
			return
		}
		got, err := dec.decode(b)
		if err != nil {
			t.Fatalf("%q: %v, encoding/json reads it", b, err)
		}
		if !reflect.DeepEqual(nonEmpty(got), nonEmpty(want)) {
			t.Fatalf("%q: got %v, want %v", b, got, want)
		}
	})
}
