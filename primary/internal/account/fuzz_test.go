package account

import (
	"strings"
	"testing"
)

// FuzzValidEmail: an accepted address is lower-case, at most 254 bytes,
// holds one @ and no space or control character, and is accepted again
// as itself.
func FuzzValidEmail(f *testing.F) {
	for _, s := range []string{"me@example.com", "Me@Example.COM", " me@example.com", "a@b", "\"a b\"@example.com", "me@example.com\r\nBcc: x@y", "<me@example.com>", "Me <me@example.com>", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ValidEmail(s)
		if err != nil {
			return
		}
		if e != strings.ToLower(e) || len(e) > 254 || strings.Count(e, "@") < 1 || strings.ContainsAny(e, "\r\n\t\x00<>") {
			t.Fatalf("%q accepted as %q", s, e)
		}
		if again, err := ValidEmail(e); err != nil || again != e {
			t.Fatalf("%q -> %q -> %q, %v", s, e, again, err)
		}
	})
}
