package main

import "strings"

// items splits a comma-separated flag value, dropping empty items.
func items(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
