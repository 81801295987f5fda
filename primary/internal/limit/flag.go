package limit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RateFlag is a rate limit as a command-line flag value (flag.Value),
// written "N/duration", e.g. "10/1m": N events at once, and N again every
// duration. "0" is no limit.
type RateFlag struct {
	rule *Rule
	per  time.Duration // as set: Every is per/Burst, rounded down to the nanosecond
}

// NewRateFlag returns a RateFlag set to def, a default written in the
// program; it panics if def does not parse, as regexp.MustCompile does.
func NewRateFlag(def string) *RateFlag {
	f := &RateFlag{}
	if err := f.Set(def); err != nil {
		panic(err)
	}
	return f
}

// String prints the limit as Set reads it.
func (f *RateFlag) String() string {
	if f.rule == nil {
		return "0"
	}
	return fmt.Sprintf("%d/%s", f.rule.Burst, f.per)
}

// Set reads "N/duration" or "0".
func (f *RateFlag) Set(s string) error {
	if s == "0" {
		f.rule = nil
		return nil
	}
	n, d, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count <= 0 {
		return fmt.Errorf("want N/duration, like 10/1m")
	}
	per, err := time.ParseDuration(d)
	if err != nil || per <= 0 {
		return fmt.Errorf("want N/duration, like 10/1m")
	}
	// "300/1s" is an event every 3,333,333 ns (rounded down); "1000/1ns"
	// would be no limit at all.
	every := per / time.Duration(count)
	if every <= 0 {
		return fmt.Errorf("%s is more than one event a nanosecond", s)
	}
	f.rule, f.per = &Rule{Every: every, Burst: count}, per
	return nil
}

// Limiter returns a Limiter applying the rate, or nil (no limit) for "0".
func (f *RateFlag) Limiter() *Limiter {
	if f.rule == nil {
		return nil
	}
	return New(*f.rule)
}
