// Package limit rate-limits what strangers can call: sign-up, log-in and
// link creation, per client address and per account, with token buckets
// from golang.org/x/time/rate. Buckets live in an otter cache that forgets
// idle keys, so a flood of addresses cannot grow memory without bound.
package limit

import (
	"math"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"
)

// Rule is a rate: Every per event, with Burst events at once.
type Rule struct {
	Every time.Duration
	Burst int
}

// Limiter holds one bucket per key.
type Limiter struct {
	rule    Rule
	buckets *otter.Cache[string, *rate.Limiter]
}

// New returns a Limiter applying rule to every key.
func New(rule Rule) *Limiter {
	idle := rule.Every * time.Duration(max(rule.Burst, 1)) * 2
	c, err := otter.New(&otter.Options[string, *rate.Limiter]{
		MaximumSize:      1 << 20,
		ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](max(idle, time.Minute)),
	})
	if err != nil {
		panic(err)
	}
	return &Limiter{rule: rule, buckets: c}
}

// Allow takes one event for key. When it is refused, retryAfter says when
// one will be allowed.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	b, _ := l.buckets.Compute(key, func(old *rate.Limiter, found bool) (*rate.Limiter, otter.ComputeOp) {
		if found {
			return old, otter.CancelOp
		}
		return rate.NewLimiter(rate.Every(l.rule.Every), l.rule.Burst), otter.WriteOp
	})
	r := b.Reserve()
	if !r.OK() {
		return false, time.Duration(math.MaxInt64)
	}
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}
