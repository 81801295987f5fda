// Package limit rate-limits what strangers can call: sign-up, log-in and
// link creation, per client address and per account, with token buckets
// from golang.org/x/time/rate. Buckets live in an otter cache that forgets
// idle keys, so a flood of addresses cannot grow memory without bound.
//
// One Limits serves both the JSON API and the web UI: a link created in
// the browser spends from the same buckets as one created through the API,
// so neither door is a way around the other's limits.
package limit

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
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
	// refused counts the requests this limiter refused, for /metrics.
	refused atomic.Uint64
}

// New returns a Limiter applying rule to every key.
func New(rule Rule) *Limiter {
	// A bucket idle this long is full again, so forgetting it loses
	// nothing: no request ever leaves a bucket below empty (see take).
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

// Burst is the most events one call can take from a bucket; a call asking
// for more is never allowed.
func (l *Limiter) Burst() int { return l.rule.Burst }

func (l *Limiter) bucket(key string) *rate.Limiter {
	b, _ := l.buckets.Compute(key, func(old *rate.Limiter, found bool) (*rate.Limiter, otter.ComputeOp) {
		if found {
			return old, otter.CancelOp
		}
		return rate.NewLimiter(rate.Every(l.rule.Every), l.rule.Burst), otter.WriteOp
	})
	return b
}

// charge names the bucket of one key; a nil Limiter allows everything.
type charge struct {
	L   *Limiter
	Key string
}

// verdict is what take decided.
type verdict struct {
	OK bool
	// Refused is the index of the charge that refused, when !OK: the one
	// with the longest wait, or one whose burst is below n.
	Refused int
	// RetryAfter is when the whole request would be allowed, when !OK and
	// not Never.
	RetryAfter time.Duration
	// Never is set when n is over the refusing bucket's burst: waiting
	// will not help; the request must be made smaller.
	Never bool
}

// take takes n events from every bucket charged, or from none: when one
// bucket cannot give n now, what the others gave is put back, so a request
// refused by its address's limit costs its account nothing, and the other
// way round. Taking never leaves a bucket in debt, which is what lets an
// idle bucket be forgotten.
func take(n int, charges ...charge) verdict {
	now := time.Now()
	var taken []*rate.Reservation
	v := verdict{OK: true}
	for i, c := range charges {
		if c.L == nil {
			continue
		}
		if n > c.L.rule.Burst {
			v = verdict{Refused: i, Never: true, RetryAfter: time.Duration(math.MaxInt64)}
			break
		}
		r := c.L.bucket(c.Key).ReserveN(now, n)
		if !r.OK() {
			v = verdict{Refused: i, Never: true, RetryAfter: time.Duration(math.MaxInt64)}
			break
		}
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			if v.OK || d > v.RetryAfter {
				v = verdict{Refused: i, RetryAfter: d}
			}
			continue // the longest wait of all decides Retry-After
		}
		taken = append(taken, r)
	}
	if !v.OK {
		for _, r := range taken {
			r.CancelAt(now)
		}
		charges[v.Refused].L.refused.Add(1)
	}
	return v
}

// Refused is how many requests l refused; 0 for a nil Limiter.
func (l *Limiter) Refused() uint64 {
	if l == nil {
		return 0
	}
	return l.refused.Load()
}

// Limits are the primary's rate limits; a nil Limiter is no limit.
type Limits struct {
	SignupPerAddr    *Limiter
	LoginPerAddr     *Limiter
	LoginPerAccount  *Limiter
	CreatePerAccount *Limiter
	CreatePerAddr    *Limiter
	// TrustedProxies are the load balancers whose X-Forwarded-For names
	// the client a request is charged to (see ClientKey).
	TrustedProxies []netip.Prefix
}

// Refusals is how many requests each limiter refused, by the name
// /metrics gives it (shortfleet_app_rate_limited_total{limiter}); a nil
// limiter, no limit, refuses none.
func (l Limits) Refusals() map[string]uint64 {
	return map[string]uint64{
		"signup_addr":    l.SignupPerAddr.Refused(),
		"login_addr":     l.LoginPerAddr.Refused(),
		"login_account":  l.LoginPerAccount.Refused(),
		"create_account": l.CreatePerAccount.Refused(),
		"create_addr":    l.CreatePerAddr.Refused(),
	}
}

// Client is the key the per-address limits charge r to.
func (l Limits) Client(r *http.Request) string { return ClientKey(r, l.TrustedProxies) }

// Refusal says why a request was refused, in words for the caller.
type Refusal struct {
	// What was too much, e.g. "links created from your address".
	What string
	// RetryAfter is when to try again; see Never.
	RetryAfter time.Duration
	// Never is set when the request asked for more than Max at once,
	// which waiting will not change.
	Never bool
	Max   int
}

// RetrySeconds is RetryAfter as a Retry-After value: whole seconds,
// rounded up, at least 1.
func (r *Refusal) RetrySeconds() int {
	return max(int((r.RetryAfter+time.Second-1)/time.Second), 1)
}

func refusal(v verdict, charges []charge, what []string) *Refusal {
	if v.OK {
		return nil
	}
	return &Refusal{What: what[v.Refused], RetryAfter: v.RetryAfter, Never: v.Never, Max: charges[v.Refused].L.Burst()}
}

// Signup charges a sign-up to the client address. There is no account to
// charge before it exists. The charge comes before any work: the password
// is hashed even when the email is taken (the insert then fails and the
// answer is 409), so this limit is what bounds the hashing a stranger can
// cause.
func (l Limits) Signup(addr string) *Refusal {
	c := []charge{{l.SignupPerAddr, addr}}
	return refusal(take(1, c...), c, []string{"sign-ups from your address"})
}

// Login charges a log-in attempt to the client address and to the account
// it names (by its normalised email, whether or not such an account
// exists, so the answer tells nothing about it).
func (l Limits) Login(addr, email string) *Refusal {
	c := []charge{{l.LoginPerAddr, addr}, {l.LoginPerAccount, email}}
	return refusal(take(1, c...), c, []string{"log-in attempts from your address", "log-in attempts for this account"})
}

// Create charges the creation of n links to the account and the client
// address: one event a link, however they arrive (one at a time, a bulk
// file, the API or the browser), all or none.
func (l Limits) Create(addr string, uid int64, n int) *Refusal {
	c := []charge{{l.CreatePerAccount, strconv.FormatInt(uid, 10)}, {l.CreatePerAddr, addr}}
	return refusal(take(max(n, 1), c...), c, []string{"links created by your account", "links created from your address"})
}
