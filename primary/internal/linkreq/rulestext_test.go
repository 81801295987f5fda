package linkreq

import (
	"reflect"
	"strings"
	"testing"

	sfsql "shortfleet/sql"
)

func TestParseRulesText(t *testing.T) {
	rs, err := ParseRulesText("Device ios https://a.example/\r\n\n  country FR   https://b.example/x?y=1 \nlanguage fr https://c.example/")
	want := []sfsql.Rule{{Kind: "device", Value: "ios", Target: "https://a.example/"},
		{Kind: "country", Value: "FR", Target: "https://b.example/x?y=1"}, {Kind: "language", Value: "fr", Target: "https://c.example/"}}
	if err != nil || !reflect.DeepEqual(rs, want) {
		t.Fatalf("got %v, %v; want %v", rs, err, want)
	}
	for _, bad := range []string{"device ios", "country FR https://x.example/ extra", strings.Repeat("device ios https://x.example/\n", 17)} {
		if _, err := ParseRulesText(bad); err == nil || !strings.Contains(err.Error(), "rules") {
			t.Errorf("%q: error %v, want one naming rules", bad, err)
		}
	}
}

// FuzzParseRulesText: what parses formats back to text that parses to the
// same rules, and never more than MaxRules.
func FuzzParseRulesText(f *testing.F) {
	for _, s := range []string{"device ios https://a.example/", "country FR https://b.example/\nlanguage fr https://c.example/", "", "a b", "\x00 \xff c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseRulesText(s)
		if err != nil {
			return
		}
		if len(rs) > sfsql.MaxRules {
			t.Fatalf("%d rules", len(rs))
		}
		again, err := ParseRulesText(FormatRulesText(rs))
		if err != nil || len(again) != len(rs) || (len(rs) > 0 && !reflect.DeepEqual(again, rs)) {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
	})
}
