// Package redirect is the proxy's hot path: it answers GET and HEAD /{code}
// with the link's redirect, looked up on the local replica, and appends
// every request it answers to the access log.
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/valyala/fasthttp"

	"shortfleet/logfmt"
	sfsql "shortfleet/sql"
	"shortfleet/sql/codes"
)

// Config tunes the redirect handler.
type Config struct {
	// LookupTimeout bounds one replica lookup.
	LookupTimeout time.Duration
}

// Server answers redirects.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	codec   *codes.Codec
	replica *pgxpool.Pool
	log     *logfmt.Writer

	requests, lookupErrors atomic.Uint64
}

// New returns a Server that looks links up on replica and logs to log.
func New(cfg Config, logger *slog.Logger, codec *codes.Codec, replica *pgxpool.Pool, log *logfmt.Writer) *Server {
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = time.Second
	}
	return &Server{cfg: cfg, logger: logger, codec: codec, replica: replica, log: log}
}

var recordPool = sync.Pool{New: func() any { return &reqState{} }}

// reqState is the per-request scratch space, pooled.
type reqState struct {
	rec  logfmt.Record
	addr []byte
}

// Handle is the fasthttp handler.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	s.requests.Add(1)
	st := recordPool.Get().(*reqState)
	rec := &st.rec
	rec.Reset()
	rec.ReplicaLagNS = -1
	s.answer(ctx, rec)

	rec.Time = start.UnixNano()
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		st.addr = ap.Addr().Unmap().AppendTo(st.addr[:0])
		rec.ClientAddr, rec.ClientPort = st.addr, ap.Port()
	}
	h := &ctx.Request.Header
	rec.Method = h.Method()
	rec.Host = h.Host()
	uri := ctx.Request.URI()
	rec.Path = uri.PathOriginal()
	rec.Query = uri.QueryString()
	rec.Proto = h.Protocol()
	rec.Status = uint16(ctx.Response.StatusCode())
	rec.UserAgent = h.UserAgent()
	rec.Referrer = h.Referer()
	rec.AcceptLanguage = h.Peek(fasthttp.HeaderAcceptLanguage)
	for k, v := range h.All() {
		rec.Headers = append(rec.Headers, logfmt.Header{Name: k, Value: v})
	}
	rec.LatencyNS = int64(time.Since(start))
	s.log.Append(rec)
	recordPool.Put(st)
}

func (s *Server) answer(ctx *fasthttp.RequestCtx, rec *logfmt.Record) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	path := ctx.Path()
	if len(path) < 2 {
		notFound(ctx)
		return
	}
	id, err := s.codec.Decode(path[1:])
	if err != nil {
		notFound(ctx) // not a code of ours: no database touched
		return
	}
	lctx, cancel := context.WithTimeout(context.Background(), s.cfg.LookupTimeout)
	link, err := sfsql.LinkByID(lctx, s.replica, id)
	cancel()
	switch {
	case errors.Is(err, sfsql.ErrNotFound):
		rec.Cache = logfmt.CacheMiss
		notFound(ctx)
	case err != nil:
		s.lookupErrors.Add(1)
		s.logger.Warn("replica lookup failed", "id", id, "err", err)
		ctx.Error("temporarily unavailable\n", fasthttp.StatusServiceUnavailable)
	case link.Disabled:
		rec.Cache, rec.LinkID = logfmt.CacheReplica, id
		ctx.Error("this link has been disabled\n", fasthttp.StatusGone)
	default:
		rec.Cache, rec.LinkID = logfmt.CacheReplica, id
		writeRedirect(ctx, link)
	}
}

func notFound(ctx *fasthttp.RequestCtx) {
	ctx.Error("no such link\n", fasthttp.StatusNotFound)
}

// writeRedirect answers with the link's redirect type and a Cache-Control
// that matches it (DESIGN.md decision 3): permanent redirects may be cached
// for a day, temporary ones not at all, so every click is seen.
func writeRedirect(ctx *fasthttp.RequestCtx, link sfsql.Link) {
	status := link.RedirectType
	if status == 0 {
		status = fasthttp.StatusFound
	}
	ctx.SetStatusCode(status)
	ctx.Response.Header.Set(fasthttp.HeaderLocation, link.Target)
	if status == fasthttp.StatusMovedPermanently || status == fasthttp.StatusPermanentRedirect {
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "public, max-age=86400")
	} else {
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "private, no-store")
	}
}

// Stats are the handler's counters.
type Stats struct {
	Requests, LookupErrors uint64
}

// Stats returns the handler's counters.
func (s *Server) Stats() Stats {
	return Stats{Requests: s.requests.Load(), LookupErrors: s.lookupErrors.Load()}
}
