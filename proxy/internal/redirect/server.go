package redirect

import (
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits bound what one client may send the redirect listener, and how
// slowly. A request over a bound is refused with a status that says which
// (431 for headers, 413 for a body, 408 for a client too slow), the
// connection is closed, and the listener goes on serving everyone else.
type Limits struct {
	// ReadTimeout is the longest a whole request may take to arrive: a
	// slowloris client dripping headers is cut off after it.
	ReadTimeout time.Duration
	// WriteTimeout is the longest writing a response may take.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request this long.
	IdleTimeout time.Duration
	// ReadBufferSize bounds the request line and headers together.
	ReadBufferSize int
	// MaxRequestBodySize bounds a body; redirects need none.
	MaxRequestBodySize int
}

// DefaultLimits are the limits the proxy runs with.
func DefaultLimits() Limits {
	return Limits{ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
		ReadBufferSize: 8 << 10, MaxRequestBodySize: 4 << 10}
}

// HTTPServer returns the fasthttp server for the redirect listener, with
// the limits l. Requests fasthttp cannot parse are answered by it and
// counted in Statuses like the others (they never reach Handle, so they are
// not in the access log); its error log leaves out the request's bytes,
// which may hold a visitor's cookies.
func (s *Server) HTTPServer(l Limits, logger *slog.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               s.Handle,
		ErrorHandler:          s.handleError,
		Name:                  "shortfleet",
		ReadTimeout:           l.ReadTimeout,
		WriteTimeout:          l.WriteTimeout,
		IdleTimeout:           l.IdleTimeout,
		ReadBufferSize:        l.ReadBufferSize,
		MaxRequestBodySize:    l.MaxRequestBodySize,
		NoDefaultContentType:  true,
		SecureErrorLogMessage: true,
		Logger:                slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// handleError answers a request fasthttp could not read.
func (s *Server) handleError(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.As(err, &small):
		status = fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = fasthttp.StatusRequestEntityTooLarge
	case errors.As(err, &netErr) && netErr.Timeout():
		status = fasthttp.StatusRequestTimeout
	}
	ctx.SetConnectionClose()
	page(ctx, status, pageBad)
	s.statuses[status].Add(1)
}

// framingConflict reports a request that carried both Transfer-Encoding
// and Content-Length. fasthttp reads its body by Transfer-Encoding alone,
// as RFC 9112 section 6.1 allows; a balancer in front may have read it by
// Content-Length, so what follows on the connection is not to be trusted
// (request smuggling): it is refused and the connection closed, as the RFC
// requires. Only a request that had framing headers at all (fasthttp's
// ContentLength is then not -2) has its raw headers scanned, so the hot
// path pays one comparison.
func framingConflict(h *fasthttp.RequestHeader) bool {
	if h.ContentLength() == -2 {
		return false
	}
	var te, cl bool
	raw := h.RawHeaders()
	for len(raw) > 0 {
		i := 0
		for i < len(raw) && raw[i] != '\n' {
			i++
		}
		line := raw[:i]
		if i < len(raw) {
			i++
		}
		raw = raw[i:]
		if c := indexByte(line, ':'); c > 0 {
			name := line[:c]
			te = te || equalFold(name, "transfer-encoding")
			cl = cl || equalFold(name, "content-length")
		}
	}
	return te && cl
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// equalFold compares an ASCII header name with a lower-case one.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
