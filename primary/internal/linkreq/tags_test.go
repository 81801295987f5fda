package linkreq

import (
	"regexp"
	"strings"
	"testing"

	"shortfleet/primary/internal/store"
)

var tagShape = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// TestParseTags: tags are lower-cased, sorted and deduplicated; a tag of
// 10 KB, one with a space or a slash, an empty one and too many tags are
// refused with the rule said and the bad tag quoted short.
func TestParseTags(t *testing.T) {
	got, err := ParseTags([]string{"Spring", " sale ", "spring", "q4_2026", "a-b"})
	if err != nil || strings.Join(got, ",") != "a-b,q4_2026,sale,spring" {
		t.Fatalf("got %v, %v", got, err)
	}
	many := make([]string, store.MaxTags+1)
	for i := range many {
		many[i] = "t" + strings.Repeat("x", i)
	}
	for _, c := range []struct {
		name string
		in   []string
		want string
	}{
		{"10 KB", []string{strings.Repeat("a", 10<<10)}, "1 to 64 characters of a-z, 0-9, '-' and '_'"},
		{"65", []string{strings.Repeat("a", 65)}, "(65 bytes)"},
		{"space", []string{"two words"}, `"two words" is refused`},
		{"slash", []string{"a/b"}, "a-z, 0-9"},
		{"empty", []string{" "}, "1 to 64"},
		{"too many", many, "at most 20"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseTags(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) || len(err.Error()) > 300 {
				t.Fatalf("got %v, want an error of at most 300 bytes saying %q", err, c.want)
			}
		})
	}
	if got := SplitTags("a, b  c,,d\n"); strings.Join(got, "|") != "a|b|c|d" {
		t.Fatalf("SplitTags: %q", got)
	}
}

// FuzzParseTag: an accepted tag has the shape the database's check
// allows, and parsing it again gives it back; a refusal says the rule and
// is short whatever the input.
func FuzzParseTag(f *testing.F) {
	for _, s := range []string{"spring", "Q4", " a ", "", "a b", strings.Repeat("x", 64), strings.Repeat("x", 65), "\u212a", "é", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, err := ParseTag(s)
		if err != nil {
			if !strings.Contains(err.Error(), TagRule) || len(err.Error()) > len(TagRule)+200 {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if !tagShape.MatchString(tag) {
			t.Fatalf("%q accepted as %q, which the database refuses", s, tag)
		}
		if again, err := ParseTag(tag); err != nil || again != tag {
			t.Fatalf("%q: %q then %q, %v", s, tag, again, err)
		}
	})
}

// FuzzTagsField reads a form's tags field as the web UI does: accepted,
// it is at most store.MaxTags tags of the database's shape, sorted and
// distinct.
func FuzzTagsField(f *testing.F) {
	for _, s := range []string{"spring, sale", "a,,b  c", "", ",", "x y x", strings.Repeat("t,", 30), "Ünïcode, ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, field string) {
		tags, err := ParseTags(SplitTags(field))
		if err != nil {
			return
		}
		if len(tags) > store.MaxTags {
			t.Fatalf("%q: %d tags", field, len(tags))
		}
		for i, tag := range tags {
			if !tagShape.MatchString(tag) || (i > 0 && tags[i-1] >= tag) {
				t.Fatalf("%q: tags %q", field, tags)
			}
		}
	})
}
