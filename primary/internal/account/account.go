// Package account signs people up: the one sign-up the primary's two
// front ends, the browser form and the JSON API, both run, so that they
// accept, refuse and fail alike.
package account

import (
	"fmt"
	"net/mail"
	"strings"
)

// ValidEmail normalises an email address, or says it is not one.
func ValidEmail(s string) (string, error) {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != strings.TrimSpace(s) || len(addr.Address) > 254 {
		return "", fmt.Errorf("email %q is not a valid address", s)
	}
	return strings.ToLower(addr.Address), nil
}
