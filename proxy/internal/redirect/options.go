package redirect

import (
	"bytes"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"

	"shortfleet/proxy/internal/links"
)

// answerOptions answers a link with issue 21 options (e.Opts != nil):
// expiry, redirect rules, forwarded query. Like the plain path it does not
// allocate: the rules compare bytes of the request in place, and the
// Location is built in the request's pooled scratch buffer.
func (s *Server) answerOptions(ctx *fasthttp.RequestCtx, st *reqState, e links.Entry) {
	o := e.Opts
	if o.Expired(s.now(ctx)) {
		page(ctx, fasthttp.StatusGone, pageExpired)
		return
	}
	target := e.Target
	if i := s.matchRule(ctx, st, o.Rules); i >= 0 {
		target = o.Rules[i].Target
		st.rule = i + 1
	}
	loc := unsafe.Slice(unsafe.StringData(target), len(target))
	if o.ForwardQuery {
		if q := ctx.URI().QueryString(); len(q) > 0 {
			st.loc = appendQuery(st.loc[:0], target, q)
			loc = st.loc
		}
	}
	if o.PasswordHash != "" {
		s.answerPassword(ctx, e, loc)
		return
	}
	writeLocation(ctx, e.Type, loc)
}

// now is the request's time in Unix ns: fasthttp read the clock as the
// request arrived, so the check costs no clock read of its own.
func (s *Server) now(ctx *fasthttp.RequestCtx) int64 {
	if s.cfg.Now != nil {
		return s.cfg.Now().UnixNano()
	}
	return ctx.Time().UnixNano()
}

// appendQuery appends target with the short URL's query string q merged
// into it. The rule: the target's own query is kept as it is, and q is
// appended after it, before any fragment; a key both carry appears twice,
// the target's first (most servers read the first). Neither side is
// decoded or re-encoded.
func appendQuery(dst []byte, target string, q []byte) []byte {
	base, frag := target, ""
	if i := strings.IndexByte(target, '#'); i >= 0 {
		base, frag = target[:i], target[i:]
	}
	dst = append(dst, base...)
	switch i := strings.IndexByte(base, '?'); {
	case i < 0:
		dst = append(dst, '?')
	case i == len(base)-1 || base[len(base)-1] == '&':
		// "…?" or "…&": the separator is there already.
	default:
		dst = append(dst, '&')
	}
	dst = append(dst, q...)
	return append(dst, frag...)
}

// matchRule returns the index of the first rule the request matches, -1
// for none. What a rule looks at is read from the request only when a
// rule asks for it, at most once.
func (s *Server) matchRule(ctx *fasthttp.RequestCtx, st *reqState, rules []links.Rule) int {
	var (
		device    []byte
		devRead   bool
		lang      []byte
		langRead  bool
		country   [2]byte
		ccKnown   bool
		countryOK bool
	)
	for i := range rules {
		r := &rules[i]
		switch r.Kind {
		case links.RuleDevice:
			if !devRead {
				device, devRead = DeviceOf(ctx.Request.Header.UserAgent()), true
			}
			if string(device) == r.Value {
				return i
			}
		case links.RuleLanguage:
			if !langRead {
				lang, langRead = FirstLanguage(st.acceptLanguage(ctx)), true
			}
			if len(lang) > 0 && equalFold(lang, r.Value) {
				return i
			}
		case links.RuleCountry:
			if !ccKnown {
				a, _ := st.clientOf(s, ctx)
				country, countryOK = s.countries().Country(a)
				ccKnown = true
			}
			if countryOK && len(r.Value) == 2 && country[0] == r.Value[0] && country[1] == r.Value[1] {
				return i
			}
		}
	}
	return -1
}

var (
	deviceIOS     = []byte("ios")
	deviceAndroid = []byte("android")
	deviceDesktop = []byte("desktop")
)

// DeviceOf is the device family a User-Agent names, read from its first
// comment, the platform ("(iPhone; CPU iPhone OS 17_0 like Mac OS X)"):
// "android" if it says Android, "ios" if it names an iPhone, iPad or iPod,
// nil if it says Mobi(le) otherwise (an unknown mobile), "desktop" for any
// other platform, and nil for an agent with no comment at all (curl, a
// bot). An iPad asking for the desktop site (Safari's default since
// iPadOS 13) reads as a Mac, so as desktop: its agent says nothing else.
// One pass over the comment, with no search of the rest: it runs on the
// redirect path for every link with a device rule.
func DeviceOf(ua []byte) []byte {
	// The comment starts a few bytes in ("Mozilla/5.0 ("): a plain loop
	// finds it sooner than IndexByte's vector setup.
	open := 0
	for open < len(ua) && ua[open] != '(' {
		open++
	}
	if open == len(ua) {
		return nil
	}
	c := ua[open+1:]
	// The platforms most traffic names come first in the comment: decide
	// on them without looking for its end.
	switch {
	case hasPrefix(c, "Windows NT"), hasPrefix(c, "Macintosh"), hasPrefix(c, "X11"):
		return deviceDesktop
	case hasPrefix(c, "iPhone"), hasPrefix(c, "iPad"), hasPrefix(c, "iPod"):
		return deviceIOS
	}
	if end := bytes.IndexByte(c, ')'); end >= 0 {
		c = c[:end]
	}
	mobile := false
	for i := 0; i+4 <= len(c); i++ {
		switch c[i] {
		case 'A':
			if i+7 <= len(c) && string(c[i:i+7]) == "Android" {
				return deviceAndroid
			}
		case 'i':
			if w := c[i : i+4]; string(w) == "iPho" || string(w) == "iPad" || string(w) == "iPod" {
				return deviceIOS
			}
		case 'M':
			mobile = mobile || string(c[i:i+4]) == "Mobi"
		}
	}
	if mobile {
		return nil
	}
	return deviceDesktop
}

// FirstLanguage is the primary subtag of the first language an
// Accept-Language header lists ("fr" of "fr-CH, fr;q=0.9, en;q=0.8"),
// as sent (compare without regard to case); nil when the header is empty,
// starts with "*" or with something not a language. The list's order is
// the client's preference; q-values are not re-sorted, as browsers send
// them in order.
func FirstLanguage(h []byte) []byte {
	h = trimSpace(h)
	n := 0
	for n < len(h) && (h[n] >= 'a' && h[n] <= 'z' || h[n] >= 'A' && h[n] <= 'Z') {
		n++
	}
	if n < 2 || n > 8 {
		return nil
	}
	if n < len(h) {
		switch h[n] {
		case '-', '_', ',', ';', ' ', '\t':
		default:
			return nil
		}
	}
	return h[:n]
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }
