// Package admin is the proxy's admin listener: liveness and readiness for
// load balancers, Prometheus metrics, profiles, and the sealed segments of
// its access log, which logfmt/ship lists, serves and takes
// acknowledgements of for the mapreduce job. Everything but /healthz and
// /readyz needs a bearer token: the admin token grants all of it, the read
// token only /metrics.
package admin

import (
	"log/slog"
	"net/http"
	"net/http/pprof"

	"shortfleet/logfmt/ship"
)

// Segments is the access log's index, as the writer keeps it.
type Segments = ship.Index

// Config configures the admin handler.
type Config struct {
	// Proxy is this proxy's id.
	Proxy string
	// LogDir is the access log folder.
	LogDir string
	// Token guards everything but health; it must not be empty.
	Token string
	// ReadToken, if set, grants /metrics and nothing more: not the
	// segments (raw logs, and their acknowledgement, which lets the proxy
	// delete them), not the profiles. It is for readers of the fleet's
	// state, such as the primary's fleet page, that should not hold Token.
	// It must differ from Token.
	ReadToken string
	// Segments is the log writer's index.
	Segments Segments
	// Ready reports readiness and why not; nil is always ready.
	Ready func() (bool, string)
	// Metrics serves /metrics; nil serves nothing there.
	Metrics http.Handler
}

// Handler returns the admin HTTP handler.
func Handler(cfg Config, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.Handler { return require(cfg, full, h) }
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if cfg.Ready != nil {
			if ok, why := cfg.Ready(); !ok {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("not ready: " + why + "\n"))
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", require(cfg, read, cfg.Metrics))
	}
	// Profiles of the running proxy, for operators and the benchmarks.
	mux.Handle("GET /debug/pprof/", auth(pprof.Index))
	mux.Handle("GET /debug/pprof/profile", auth(pprof.Profile))
	mux.Handle("GET /debug/pprof/trace", auth(pprof.Trace))
	// The segment endpoints, for the admin token only: raw logs, and an
	// acknowledgement lets the proxy delete them.
	segments := ship.Handler(ship.Folder{Proxy: cfg.Proxy, Dir: cfg.LogDir, Index: cfg.Segments},
		func(next http.Handler) http.Handler { return require(cfg, full, next) }, logger)
	mux.Handle("/segments", segments)
	mux.Handle("/segments/", segments)
	return mux
}

// access is what a request's bearer token grants.
type access int

const (
	none access = iota
	read        // the read token: /metrics
	full        // the admin token: everything
)

// accessOf returns what r's bearer token grants, comparing in constant
// time.
func accessOf(cfg Config, r *http.Request) access {
	switch {
	case ship.Bearer(r, cfg.Token):
		return full
	case ship.Bearer(r, cfg.ReadToken):
		return read
	}
	return none
}

// require refuses requests whose token does not grant need: 401 without a
// known token, 403 with the read token where it does not reach.
func require(cfg Config, need access, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch a := accessOf(cfg, r); {
		case a >= need:
			next.ServeHTTP(w, r)
		case a == read:
			http.Error(w, "the read token grants /metrics only; this needs the admin token", http.StatusForbidden)
		default:
			ship.Unauthorized(w)
		}
	})
}
