package redirect

import (
	"html"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/maypok86/otter/v2"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"

	"shortfleet/proxy/internal/links"
)

// Password-protected links. A GET is answered with a small form; a POST
// with the right password is answered with the redirect. Three things
// keep the checks from hurting anyone else:
//
//   - argon2id is costly on purpose (the primary hashes link passwords at
//     9 MiB and 4 passes: tens of ms of one core). The checks run on a
//     bounded pool, PasswordConfig.Workers slots (default 1: at most one
//     of a 2-core proxy's cores). A guess that finds every slot taken
//     waits for one, up to PasswordConfig.Wait, in a line of at most
//     PasswordConfig.MaxWaiting; past either it is answered 503 without
//     hashing. Waiting guesses sleep rather than spin, so a flood costs
//     one core at most, and redirects keep the other.
//   - Guesses are limited per link and client address (a token bucket,
//     PasswordConfig.Every and Burst), in an otter cache bounded in
//     entries so a flood of addresses cannot grow memory; over the limit
//     is 429, also without hashing.
//   - Each outcome is its own status in the access log: 200 the form, 403
//     a wrong password, 429 limited, 503 the pool full, 302 the redirect.

// PasswordConfig tunes password checks.
type PasswordConfig struct {
	// Workers is how many password checks may run at once (default 1).
	Workers int
	// Every and Burst are the guess rate allowed per link and client
	// address (default one per 10 s, 5 at once).
	Every time.Duration
	Burst int
	// MaxClients bounds the buckets kept (default 100,000).
	MaxClients int
	// Wait is how long a guess may wait for a slot (default 100ms), and
	// MaxWaiting how many may wait at once (default 16).
	Wait       time.Duration
	MaxWaiting int
}

func (c *PasswordConfig) defaults() {
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.Every <= 0 {
		c.Every = 10 * time.Second
	}
	if c.Burst <= 0 {
		c.Burst = 5
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 100_000
	}
	if c.Wait <= 0 {
		c.Wait = 100 * time.Millisecond
	}
	if c.MaxWaiting <= 0 {
		c.MaxWaiting = 16
	}
}

// passwords holds the pool's slots and the guess buckets.
type passwords struct {
	cfg     PasswordConfig
	slots   chan struct{}
	waiting atomic.Int32
	buckets *otter.Cache[string, *rate.Limiter]
}

func newPasswords(cfg PasswordConfig) *passwords {
	cfg.defaults()
	idle := cfg.Every * time.Duration(cfg.Burst) * 2 // idle this long, a bucket is full again
	return &passwords{cfg: cfg, slots: make(chan struct{}, cfg.Workers),
		buckets: otter.Must(&otter.Options[string, *rate.Limiter]{MaximumSize: cfg.MaxClients,
			ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](max(idle, time.Minute))})}
}

// allow takes a guess from the bucket of link id and client address a.
func (p *passwords) allow(id int64, a string) bool {
	key := strconv.FormatInt(id, 10) + " " + a
	b, _ := p.buckets.Compute(key, func(old *rate.Limiter, found bool) (*rate.Limiter, otter.ComputeOp) {
		if found {
			return old, otter.CancelOp
		}
		return rate.NewLimiter(rate.Every(p.cfg.Every), p.cfg.Burst), otter.WriteOp
	})
	return b.Allow()
}

// check compares pw with hash on a pool slot; busy is true when every
// slot was taken and nothing was compared.
func (p *passwords) check(pw []byte, hash string) (ok, busy bool) {
	if !p.acquire() {
		return false, true
	}
	defer func() { <-p.slots }()
	ok, err := argon2id.ComparePasswordAndHash(string(pw), hash)
	return ok && err == nil, false
}

// maxLinkPassword is the longest password the primary accepts; a longer
// guess is wrong without hashing it.
const maxLinkPassword = 256

// answerPassword answers a protected link: the form, or a checked POST.
// target is where the link sends this request (rules already applied,
// query already forwarded).
func (s *Server) answerPassword(ctx *fasthttp.RequestCtx, e links.Entry, target []byte) {
	if !ctx.IsPost() {
		passwordForm(ctx, fasthttp.StatusOK, target, "")
		return
	}
	pw := ctx.PostArgs().Peek("password")
	addr, _ := s.clientAddr(ctx)
	switch {
	case !s.pw.allow(e.ID, addr.String()):
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, strconv.Itoa(int(s.pw.cfg.Every/time.Second)+1))
		passwordForm(ctx, fasthttp.StatusTooManyRequests, target, "Too many tries. Wait a little and try again.")
		return
	case len(pw) == 0 || len(pw) > maxLinkPassword:
		passwordForm(ctx, fasthttp.StatusForbidden, target, "Wrong password.")
		return
	}
	ok, busy := s.pw.check(pw, e.Opts.PasswordHash)
	switch {
	case busy:
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		passwordForm(ctx, fasthttp.StatusServiceUnavailable, target, "Busy checking passwords. Try again in a moment.")
	case !ok:
		passwordForm(ctx, fasthttp.StatusForbidden, target, "Wrong password.")
	default:
		// 302 turns the POST into a GET, in every browser, and is a click
		// the stats count; never cached, so each visit asks again.
		writeLocation(ctx, fasthttp.StatusFound, target)
	}
}

// passwordForm writes the form. It has no script; its Content-Security-
// Policy allows nothing but its inline style and posting to itself, and
// the target's origin as where that post may lead (browsers apply
// form-action to the redirect that answers the post).
func passwordForm(ctx *fasthttp.RequestCtx, status int, target []byte, msg string) {
	csp := "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
	if u, err := url.Parse(string(target)); err == nil && (u.Scheme == "https" || u.Scheme == "http") && plainHost(u.Host) {
		csp += " " + u.Scheme + "://" + u.Host
	}
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	action := string(ctx.Path())
	if q := ctx.URI().QueryString(); len(q) > 0 {
		action += "?" + string(q)
	}
	body := "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>Password needed</title>" +
		"<style>body{font:16px system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}input,button{font:inherit;padding:.4rem}" +
		".err{color:#b3261e}</style><h1>Password needed</h1><p>This link is protected. Enter its password to continue.</p>"
	if msg != "" {
		body += "<p class=err id=msg>" + html.EscapeString(msg) + "</p>"
	}
	body += "<form method=post action=\"" + html.EscapeString(action) + "\"><input type=password name=password autofocus required maxlength=256 " +
		"aria-label=Password autocomplete=off> <button type=submit>Continue</button></form>\n"
	page(ctx, status, []byte(body))
}

// acquire takes a pool slot, waiting in the bounded line if need be.
func (p *passwords) acquire() bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
	}
	if p.waiting.Add(1) > int32(p.cfg.MaxWaiting) {
		p.waiting.Add(-1)
		return false
	}
	defer p.waiting.Add(-1)
	t := time.NewTimer(p.cfg.Wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// plainHost reports a host (and port) made of letters, digits and . - : [ ]
// only: URL syntax allows more in a host (sub-delimiters such as ';'),
// which must not reach a header whose directives ';' separates.
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}
