package linkreq

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"shortfleet/primary/internal/store"
)

// MaxTagLen bounds a tag, in characters (all ASCII).
const MaxTagLen = 64

// TagRule says what a tag may be, in the words every refusal uses.
var TagRule = fmt.Sprintf("a tag is 1 to %d characters of a-z, 0-9, '-' and '_' (upper case is read as lower case)", MaxTagLen)

// ParseTag checks one tag and returns it lower-cased and trimmed. The
// refusal quotes at most the tag's first 20 characters: a 10 KB tag is
// not echoed back whole.
func ParseTag(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	ok := t != "" && len(t) <= MaxTagLen
	for i := 0; ok && i < len(t); i++ {
		c := t[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if !ok {
		return "", fmt.Errorf("tag %s is refused: %s", quoteShort(s), TagRule)
	}
	return t, nil
}

// quoteShort quotes s, cut to its first 20 characters with its length said.
func quoteShort(s string) string {
	if utf8.RuneCountInString(s) <= 20 {
		return fmt.Sprintf("%q", s)
	}
	r := []rune(s)
	return fmt.Sprintf("%q… (%d bytes)", string(r[:20]), len(s))
}

// ParseTags checks a list of tags and returns them lower-cased, sorted
// and without repeats; more than store.MaxTags distinct tags are refused.
func ParseTags(in []string) ([]string, error) {
	if len(in) > 4*store.MaxTags {
		return nil, fmt.Errorf("tags: %d given, a link has at most %d", len(in), store.MaxTags)
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		t, err := ParseTag(s)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > store.MaxTags {
		return nil, fmt.Errorf("tags: %d given, a link has at most %d", len(out), store.MaxTags)
	}
	return out, nil
}

// SplitTags reads the tags a person types in a form field: separated by
// commas or spaces.
func SplitTags(field string) []string {
	return strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}
