// Package redirect is the proxy's hot path: it answers GET and HEAD /{code}
// (or /{alias}) with the link's redirect and appends every request it
// answers to the access log.
//
// A cached redirect does not allocate: the code decodes in place, the cache
// returns a value, headers and pages are copied into fasthttp's reused
// buffers, and the log writer copies the record into its column builders.
//
// Ownership: a fasthttp RequestCtx and every byte slice taken from it are
// valid only until the handler returns. Nothing here keeps them: the log
// writer copies what it keeps before Append returns.
package redirect

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pires/go-proxyproto"
	"github.com/valyala/fasthttp"

	"shortfleet/logfmt"
	"shortfleet/proxy/internal/geo"
	"shortfleet/proxy/internal/links"
	"shortfleet/proxy/internal/metrics"
	sfsql "shortfleet/sql"
	"shortfleet/sql/codes"
)

// Config tunes the handler.
type Config struct {
	// TrustedProxies are the load balancers whose X-Forwarded-For and
	// X-Client-Port are believed (the client's address, and its port when
	// the balancer itself appended that address); the client address and
	// port of anyone else's request are the socket's.
	TrustedProxies []netip.Prefix
	// ClockOffset is added to the time in every log record: zero in
	// production; fault drills set it to play a proxy whose clock is off.
	ClockOffset time.Duration
	// RedactHeaders are more request headers whose values are logged as
	// logfmt.Redacted, besides Authorization, Cookie and
	// Proxy-Authorization, which always are. Names match without regard
	// to case. Headers the log keeps in columns of their own (Host,
	// User-Agent, Referer, Accept-Language) are not redacted here.
	RedactHeaders []string
	// Countries maps client addresses to countries for links' country
	// rules; nil: no country rule ever matches.
	Countries *geo.DB
	// Now, if set, is the clock links' expiry is checked against (tests);
	// nil is the time fasthttp read as the request arrived.
	Now func() time.Time
	// Password tunes the checks of password-protected links.
	Password PasswordConfig
}

// alwaysRedacted are the request headers whose values are never logged:
// a visitor's session cookies and credentials for the site or for a proxy
// on the way. The raw logs are kept a year, served by the admin API and
// archived, so credentials in them would outlive any session.
var alwaysRedacted = []string{"authorization", "cookie", "proxy-authorization"}

// redactedValue is logfmt.Redacted as the bytes a record points at.
var redactedValue = []byte(logfmt.Redacted)

// AccessLog records every request answered: the proxy's accesslog.Log,
// or a bare logfmt.Writer. Append must copy what it keeps from the record
// and must not wait for the disk.
type AccessLog interface {
	Append(r *logfmt.Record)
}

// Server answers redirects.
type Server struct {
	cfg    Config
	logger *slog.Logger
	codec  *codes.Codec
	links  *links.Resolver
	log    AccessLog // nil: logging off (benchmarks only)
	redact []string  // lower-case names of the headers whose values are not logged
	pw     *passwords
	// geo is a country database loaded after the server started
	// (SetCountries); until then Config.Countries is used.
	geo atomic.Pointer[geo.DB]

	statuses [600]atomic.Uint64
	// redirects times the requests answered with a redirect.
	redirects *metrics.Histogram
}

// SetCountries replaces the country database the rules read: the proxy
// loads it in the background, so a start is not held up by it.
func (s *Server) SetCountries(db *geo.DB) { s.geo.Store(db) }

// countries is the country database in use; nil: none.
func (s *Server) countries() *geo.DB {
	if db := s.geo.Load(); db != nil {
		return db
	}
	return s.cfg.Countries
}

// New returns a Server resolving through lr and logging to log; a nil log
// turns logging off.
func New(cfg Config, logger *slog.Logger, codec *codes.Codec, lr *links.Resolver, log AccessLog) *Server {
	redact := slices.Clone(alwaysRedacted)
	for _, name := range cfg.RedactHeaders {
		if name = strings.ToLower(strings.TrimSpace(name)); name != "" && !slices.Contains(redact, name) {
			redact = append(redact, name)
		}
	}
	return &Server{cfg: cfg, logger: logger, codec: codec, links: lr, log: log, redact: redact, pw: newPasswords(cfg.Password),
		redirects: metrics.NewHistogram(metrics.RedirectBuckets)}
}

// Redirects is the latency histogram of the requests answered with a
// redirect, for /metrics.
func (s *Server) Redirects() *metrics.Histogram { return s.redirects }

var statePool = sync.Pool{New: func() any { return &reqState{} }}

// reqState is the per-request scratch space, pooled.
type reqState struct {
	rec  logfmt.Record
	addr []byte
	loc  []byte // a Location built for the request (forwarded query)
	rule int    // 1 + the index of the redirect rule that matched; 0: none
	// What both the rules and the log read of a request, read once.
	client     netip.Addr
	port       uint16
	clientRead bool
	lang       []byte
	langRead   bool
}

// clientOf is s.clientAddr of the request, read once per request.
func (st *reqState) clientOf(s *Server, ctx *fasthttp.RequestCtx) (netip.Addr, uint16) {
	if !st.clientRead {
		st.client, st.port = s.clientAddr(ctx)
		st.clientRead = true
	}
	return st.client, st.port
}

// acceptLanguage is the request's Accept-Language, read once per request:
// a Peek normalises the name and walks the headers.
func (st *reqState) acceptLanguage(ctx *fasthttp.RequestCtx) []byte {
	if !st.langRead {
		st.lang = ctx.Request.Header.Peek(fasthttp.HeaderAcceptLanguage)
		st.langRead = true
	}
	return st.lang
}

// Handle is the fasthttp handler.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	// fasthttp read the clock as the request arrived.
	start := ctx.Time()
	st := statePool.Get().(*reqState)
	rec := &st.rec
	rec.Reset()
	st.rule, st.clientRead, st.langRead = 0, false, false
	s.answer(ctx, st)
	status := ctx.Response.StatusCode()
	if status >= 0 && status < len(s.statuses) {
		s.statuses[status].Add(1)
	}
	// A redirect's time is the log record's latency, the one clock read
	// after the answer either way: from fasthttp's read of the request to
	// the answer and its record ready.
	redirect := status >= 300 && status < 400
	if s.log != nil {
		s.fillRecord(ctx, st, start, status)
		if redirect {
			s.redirects.Observe(rec.LatencyNS)
		}
		s.log.Append(rec)
	} else if redirect {
		s.redirects.Observe(int64(time.Since(start)))
	}
	statePool.Put(st)
}

func (s *Server) fillRecord(ctx *fasthttp.RequestCtx, st *reqState, start time.Time, status int) {
	rec := &st.rec
	rec.Time = start.Add(s.cfg.ClockOffset).UnixNano()
	addr, port := st.clientOf(s, ctx)
	st.addr = addr.AppendTo(st.addr[:0])
	rec.ClientAddr, rec.ClientPort = st.addr, port
	h := &ctx.Request.Header
	rec.Method = h.Method()
	rec.Host = h.Host()
	uri := ctx.Request.URI()
	rec.Path = uri.PathOriginal()
	rec.Query = uri.QueryString()
	rec.Proto = h.Protocol()
	rec.Status = uint16(status)
	rec.Rule = uint8(st.rule)
	rec.ReplicaLagNS = s.links.LagNS()
	rec.UserAgent = h.UserAgent()
	rec.Referrer = h.Referer()
	rec.AcceptLanguage = st.acceptLanguage(ctx)
	for k, v := range h.All() {
		if hasColumn(k) {
			continue
		}
		if s.redacted(k) {
			v = redactedValue
		}
		rec.Headers = append(rec.Headers, logfmt.Header{Name: k, Value: v})
	}
	rec.LatencyNS = int64(time.Since(start))
}

// redacted reports a header whose value must not be logged. It compares
// in place, without regard to case, so the hot path does not allocate.
func (s *Server) redacted(name []byte) bool {
	for _, r := range s.redact {
		if equalFold(name, r) {
			return true
		}
	}
	return false
}

// hasColumn reports a header the log keeps in a column of its own, so the
// header list need not repeat it.
func hasColumn(name []byte) bool {
	switch len(name) {
	case 4:
		return string(name) == fasthttp.HeaderHost
	case 7:
		return string(name) == fasthttp.HeaderReferer
	case 10:
		return string(name) == fasthttp.HeaderUserAgent
	case 15:
		return string(name) == fasthttp.HeaderAcceptLanguage
	}
	return false
}

// clientAddr is the client's address and port. From anyone but a trusted
// load balancer they are the socket's peer's, and its headers are ignored.
// From a trusted balancer the address is the rightmost untrusted one of
// X-Forwarded-For, read over every header line in order (HAProxy's option
// forwardfor adds its own line after any the client sent, so a client's
// own line is never the rightmost). The port is known only for the
// rightmost address, the one the balancer itself appended: the balancer
// sends that client's source port as X-Client-Port. An address from
// further left was appended by an earlier hop, whose client's port no
// header carries, so it is logged with port 0, as is the balancer's own
// address when the header names no one. (A PROXY protocol header from a
// trusted balancer has already replaced the socket's peer at the
// listener.)
func (s *Server) clientAddr(ctx *fasthttp.RequestCtx) (netip.Addr, uint16) {
	var peer netip.AddrPort
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer = a.AddrPort()
	}
	addr := peer.Addr().Unmap()
	if len(s.cfg.TrustedProxies) == 0 || !s.trusted(addr) {
		return addr, peer.Port()
	}
	h := &ctx.Request.Header
	var port uint16
	rightmost := true
	// PeekAll reuses the header's buffer: no allocation once warm.
	lines := h.PeekAll(fasthttp.HeaderXForwardedFor)
	for l := len(lines) - 1; l >= 0; l-- {
		xff := lines[l]
		for len(xff) > 0 {
			i := len(xff) - 1
			for i >= 0 && xff[i] != ',' {
				i--
			}
			part := trimSpace(xff[i+1:])
			xff = xff[:max(i, 0)]
			if len(part) == 0 {
				continue
			}
			a, err := netip.ParseAddr(unsafe.String(&part[0], len(part)))
			if err != nil {
				return addr, port // garbage: keep the last address we trust
			}
			addr, port = a.Unmap(), 0
			if rightmost {
				port = parsePort(h.Peek(headerClientPort))
				rightmost = false
			}
			if !s.trusted(addr) {
				return addr, port
			}
		}
	}
	return addr, port
}

// headerClientPort carries the client's TCP source port from a trusted
// balancer (HAProxy: http-request set-header X-Client-Port %cp).
const headerClientPort = "X-Client-Port"

// parsePort reads a decimal port, 1 to 65535; anything else (a sign, a
// space, hex, zero, too large) is 0, the log's "unknown".
func parsePort(v []byte) uint16 {
	if len(v) == 0 {
		return 0
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return 0
		}
	}
	return uint16(n)
}

func (s *Server) trusted(a netip.Addr) bool { return inPrefixes(s.cfg.TrustedProxies, a) }

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ProxyProtocolListener accepts the PROXY protocol (v1 and v2) from trusted
// load balancers, so the client address the proxy logs is the client's. A
// stranger's connection is passed through untouched: a PROXY header from it
// is not believed, and fasthttp answers it 400.
func ProxyProtocolListener(ln net.Listener, trusted []netip.Prefix) net.Listener {
	return &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: 5 * time.Second,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if a, ok := o.Upstream.(*net.TCPAddr); ok && inPrefixes(trusted, a.AddrPort().Addr().Unmap()) {
				return proxyproto.USE, nil
			}
			return proxyproto.SKIP, nil
		}}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// IsAliasShaped reports whether name could be an alias: 3 to 64 of
// [A-Za-z0-9_-]. Codes are checked first; anything else is a 404 that
// touches no database.
func IsAliasShaped(name []byte) bool {
	if len(name) < 3 || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Server) answer(ctx *fasthttp.RequestCtx, st *reqState) {
	rec := &st.rec
	if framingConflict(&ctx.Request.Header) {
		ctx.SetConnectionClose()
		page(ctx, fasthttp.StatusBadRequest, pageBad)
		return
	}
	// POST is for a password-protected link's form, checked once the
	// link is known.
	if !ctx.IsGet() && !ctx.IsHead() && !ctx.IsPost() {
		methodNotAllowed(ctx)
		return
	}
	path := ctx.Path()
	if len(path) < 2 {
		page(ctx, fasthttp.StatusNotFound, page404)
		return
	}
	name := path[1:]
	var (
		e   links.Entry
		out links.Outcome
		err error
	)
	if id, derr := s.codec.Decode(name); derr == nil {
		e, out, err = s.links.Resolve(context.Background(), id)
	} else if IsAliasShaped(name) {
		e, out, err = s.links.ResolveAlias(context.Background(), name)
	} else if ctx.IsPost() {
		methodNotAllowed(ctx) // no database touched
		return
	} else {
		page(ctx, fasthttp.StatusNotFound, page404) // no database touched
		return
	}
	rec.Cache = out.LogValue()
	switch {
	case err == nil:
		rec.LinkID = e.ID
		if ctx.IsPost() && (e.Opts == nil || e.Opts.PasswordHash == "") {
			methodNotAllowed(ctx)
			return
		}
		if e.Disabled {
			page(ctx, fasthttp.StatusGone, page410)
			return
		}
		if e.Opts != nil {
			s.answerOptions(ctx, st, e)
			return
		}
		writeLocation(ctx, e.Type, unsafe.Slice(unsafe.StringData(e.Target), len(e.Target)))
	case errors.Is(err, sfsql.ErrNotFound) && ctx.IsPost():
		methodNotAllowed(ctx) // as for any link without a password
	case errors.Is(err, sfsql.ErrNotFound):
		page(ctx, fasthttp.StatusNotFound, page404)
	default:
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "2")
		page(ctx, fasthttp.StatusServiceUnavailable, page503)
	}
}

func methodNotAllowed(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
	page(ctx, fasthttp.StatusMethodNotAllowed, page405)
}

// writeLocation answers with the link's redirect type to loc and a
// Cache-Control that matches it (README.md decision 3): permanent
// redirects may be cached by browsers for a day, temporary ones not at
// all, so every click is seen.
func writeLocation(ctx *fasthttp.RequestCtx, typ uint16, loc []byte) {
	status := int(typ)
	if status == 0 {
		status = fasthttp.StatusFound
	}
	h := &ctx.Response.Header
	h.SetStatusCode(status)
	// fasthttp sets the length only for a body it sends; set it here so a
	// HEAD carries GET's Content-Length: 0 too.
	h.SetContentLength(0)
	// Canonical keys skip fasthttp's per-call key normalisation; the value
	// is copied before the handler returns.
	h.SetCanonical(keyLocation, loc)
	if status == fasthttp.StatusMovedPermanently || status == fasthttp.StatusPermanentRedirect {
		h.SetCanonical(keyCacheControl, cachePermanent)
	} else {
		h.SetCanonical(keyCacheControl, cacheTemporary)
	}
}

var (
	keyLocation     = []byte(fasthttp.HeaderLocation)
	keyCacheControl = []byte(fasthttp.HeaderCacheControl)
	cachePermanent  = []byte("public, max-age=86400")
	cacheTemporary  = []byte("private, no-store")
	noStore         = []byte("no-store")
)

func page(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.SetCanonical(keyCacheControl, noStore)
	ctx.SetBody(body)
}

var (
	page404 = []byte("<!doctype html><meta charset=utf-8><title>Not found</title>" +
		"<h1>Not found</h1><p>There is no link at this address. Check it for typos.</p>\n")
	page410 = []byte("<!doctype html><meta charset=utf-8><title>Link disabled</title>" +
		"<h1>Link disabled</h1><p>This link has been disabled by its owner or for abuse.</p>\n")
	pageExpired = []byte("<!doctype html><meta charset=utf-8><title>Link expired</title>" +
		"<h1>Link expired</h1><p>This link had an expiry date, and it has passed.</p>\n")
	page405 = []byte("<!doctype html><meta charset=utf-8><title>Method not allowed</title>" +
		"<h1>Method not allowed</h1><p>Short links answer GET and HEAD only.</p>\n")
	pageBad = []byte("<!doctype html><meta charset=utf-8><title>Bad request</title>" +
		"<h1>Bad request</h1><p>This request could not be read: it is malformed, too large or too slow.</p>\n")
	page503 = []byte("<!doctype html><meta charset=utf-8><title>Try again</title>" +
		"<h1>Temporarily unavailable</h1><p>This link could not be looked up just now. Try again in a moment.</p>\n")
)

// Statuses returns how many requests were answered with each status.
func (s *Server) Statuses() map[int]uint64 {
	m := map[int]uint64{}
	for code := range s.statuses {
		if n := s.statuses[code].Load(); n > 0 {
			m[code] = n
		}
	}
	return m
}
