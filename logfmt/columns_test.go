package logfmt

import (
	"strings"
	"testing"
)

// TestValidUTF8: a column's values come out as strings.ToValidUTF8 makes
// them, each on its own, including values that are valid only joined to
// their neighbour (a rune split across two values).
func TestValidUTF8(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"ascii", []string{"GET", "", "/abc", "x"}},
		{"valid runes", []string{"de-CH", "Zürich", "日本", ""}},
		{"invalid inside", []string{"ok", "bad\xff\xfeagent", "/\xc3", "v\xe2\x82"}},
		{"rune split across values", []string{"caf\xc3", "\xa9", "x"}},
		{"rune split, first value empty", []string{"", "\xe2\x82", "\xac"}},
		{"last value cut short", []string{"a", "\xe6\x97"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c strCol
			c.reset()
			for _, v := range tc.values {
				c.append([]byte(v))
			}
			c.validUTF8()
			if n := len(c.offsets) - 1; n != len(tc.values) {
				t.Fatalf("%d values, want %d", n, len(tc.values))
			}
			for i, v := range tc.values {
				got := string(c.data[c.offsets[i]:c.offsets[i+1]])
				if want := strings.ToValidUTF8(v, "\uFFFD"); got != want {
					t.Errorf("value %d: got %q, want %q", i, got, want)
				}
			}
		})
	}
}
