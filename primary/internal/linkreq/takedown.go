package linkreq

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"shortfleet/primary/internal/store"
)

// CheckReason trims an admin's takedown reason, which the link's owner
// reads, and says what is wrong with it: empty, not UTF-8, longer than
// store.MaxReasonLen characters, or holding control characters other
// than newlines and tabs.
func CheckReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return "", errors.New("reason: say why the link is taken down; its owner reads it")
	case !utf8.ValidString(reason):
		return "", errors.New("reason: not UTF-8 text")
	case utf8.RuneCountInString(reason) > store.MaxReasonLen:
		return "", errors.New("reason: at most " + strconv.Itoa(store.MaxReasonLen) + " characters")
	}
	for _, c := range reason {
		if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
			return "", errors.New("reason: control characters are not allowed")
		}
	}
	return reason, nil
}

// LinkRef is the code or alias an admin names a link by: as typed, or
// the last path segment of a short URL pasted whole. Empty means none.
func LinkRef(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	return s[strings.LastIndexByte(s, '/')+1:]
}
