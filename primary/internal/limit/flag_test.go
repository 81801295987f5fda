package limit

import (
	"testing"
	"time"
)

// FuzzRateFlag reads the -rate-* flags: an accepted value is a real limit
// (a positive burst and a positive interval), and what String prints
// reads back as the same limit.
func FuzzRateFlag(f *testing.F) {
	for _, s := range []string{"0", "10/1m", "20/1h", "100/1s", "300/1s", "30/1m", "7/1s", "1000/1ns", "3/1ns", "-1/1s", "5/0s", "5/-1s", "x/y", "10/", "/1m", "9223372036854775807/1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r RateFlag
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
		var back RateFlag
		if err := back.Set(r.String()); err != nil || back.rule == nil || *back.rule != *r.rule || back.per != r.per {
			t.Fatalf("%q -> %q -> %+v, %v; want %+v", s, r.String(), back.rule, err, *r.rule)
		}
		if per := time.Duration(r.rule.Burst) * r.rule.Every; per <= 0 || per > r.per {
			t.Fatalf("%q: %d events every %s is a period of %s, more than the %s set", s, r.rule.Burst, r.rule.Every, per, r.per)
		}
	})
}

// TestRateFlagDefaults: every default limit the primary starts with
// parses (300/1s is not a whole number of nanoseconds an event, and once
// made the app panic at start-up) and prints back as written.
func TestRateFlagDefaults(t *testing.T) {
	for _, s := range []string{"20/1h0m0s", "30/1m0s", "10/1m0s", "100/1s", "300/1s"} {
		var r RateFlag
		if err := r.Set(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if r.String() != s {
			t.Errorf("%s prints as %s", s, r.String())
		}
	}
	if r := NewRateFlag("300/1s"); r.rule.Every != 3333333*time.Nanosecond || r.rule.Burst != 300 {
		t.Errorf("300/1s: %+v", *r.rule)
	}
}

// TestRateFlagLimiter: "0" is no limiter (a nil Limiter allows
// everything); N/duration is a limiter whose bucket holds N.
func TestRateFlagLimiter(t *testing.T) {
	if l := NewRateFlag("0").Limiter(); l != nil {
		t.Fatalf("0: limiter %+v, want none", l)
	}
	l := NewRateFlag("2/1h").Limiter()
	if l == nil || l.Burst() != 2 {
		t.Fatalf("2/1h: limiter %+v", l)
	}
	lim := Limits{SignupPerAddr: l}
	for i, want := range []bool{true, true, false} {
		if got := lim.Signup("192.0.2.1") == nil; got != want {
			t.Fatalf("sign-up %d: allowed %v, want %v", i+1, got, want)
		}
	}
}
