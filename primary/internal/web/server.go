package web

import (
	"log/slog"
	"net/http"
	"time"
)

// ServerLimits bound what one client may send the primary, and how slowly.
// Headers over MaxHeaderBytes are refused 431 by net/http; bodies are
// bounded where they are read (JSON, CSV, forms) and refused 413.
type ServerLimits struct {
	// ReadHeaderTimeout cuts off a client dripping its headers
	// (slowloris); ReadTimeout bounds the whole request.
	ReadHeaderTimeout, ReadTimeout time.Duration
	WriteTimeout, IdleTimeout      time.Duration
	MaxHeaderBytes                 int
}

// DefaultServerLimits are the limits the primary runs with.
func DefaultServerLimits() ServerLimits {
	return ServerLimits{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10}
}

// HTTPServer returns the primary's HTTP server for h, with the limits l.
func HTTPServer(h http.Handler, l ServerLimits, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           closeChunked(h),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// closeChunked closes the connection after answering a chunked request.
// net/http reads such a body by Transfer-Encoding and drops a
// Content-Length beside it, as RFC 9112 section 6.1 allows, but keeps the
// connection; the RFC requires closing it, since a balancer in front may
// have read the body by Content-Length and what follows is then a
// smuggled request. The handler cannot tell whether a Content-Length came
// too, so every chunked request costs its connection: browsers and API
// clients send bodies with a length.
func closeChunked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}
