package main

import (
	"testing"
	"time"
)

// FuzzRateFlag reads the -rate-* flags: an accepted value is a real limit
// (a positive burst and a positive interval), and what String prints
// reads back as the same limit.
func FuzzRateFlag(f *testing.F) {
	for _, s := range []string{"0", "10/1m", "20/1h", "100/1s", "1000/1ns", "3/1ns", "-1/1s", "5/0s", "5/-1s", "x/y", "10/", "/1m", "9223372036854775807/1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r rateFlag
		if err := r.Set(s); err != nil {
			return
		}
		if r.rule == nil {
			if s != "0" {
				t.Fatalf("%q: no limit", s)
			}
			return
		}
		if r.rule.Burst <= 0 || r.rule.Every <= 0 {
			t.Fatalf("%q: rule %+v is no limit", s, *r.rule)
		}
		var back rateFlag
		if err := back.Set(r.String()); err != nil || back.rule == nil || *back.rule != *r.rule {
			t.Fatalf("%q -> %q -> %+v, %v; want %+v", s, r.String(), back.rule, err, *r.rule)
		}
		if per := time.Duration(r.rule.Burst) * r.rule.Every; per <= 0 {
			t.Fatalf("%q: period overflows", s)
		}
	})
}
