// Package admin is the proxy's admin listener: liveness and readiness for
// load balancers, Prometheus metrics, and the sealed segments of its access
// log, listed, served and acknowledged for the mapreduce job. Everything but
// /healthz and /readyz needs a bearer token: the admin token grants all of
// it, the read token only /metrics. It is not internal so that the
// mapreduce job's tests pull real segments through the real API, and the
// primary's tests read the real metrics with the read token.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"

	"shortfleet/logfmt"
)

// Segments is the access log's index, as the writer keeps it.
type Segments interface {
	Pending() []logfmt.Entry
	MarkIngested(names []string) error
}

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

// Listing is the answer to GET /segments.
type Listing struct {
	Proxy    string         `json:"proxy"`
	Segments []logfmt.Entry `json:"segments"`
}

// Ack is the body of POST /segments/ingested.
type Ack struct {
	Names []string `json:"names"`
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
	mux.Handle("GET /segments", auth(func(w http.ResponseWriter, r *http.Request) {
		var entries []logfmt.Entry
		if r.URL.Query().Get("all") != "" {
			var err error
			if entries, err = logfmt.ReadManifest(cfg.LogDir); err != nil {
				logger.Error("read manifest", "err", err)
				http.Error(w, "manifest unreadable", http.StatusInternalServerError)
				return
			}
		} else {
			entries = cfg.Segments.Pending()
		}
		if entries == nil {
			entries = []logfmt.Entry{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Listing{Proxy: cfg.Proxy, Segments: entries})
	}))
	mux.Handle("POST /segments/ingested", auth(func(w http.ResponseWriter, r *http.Request) {
		var ack Ack
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&ack); err != nil {
			http.Error(w, "body must be {\"names\": [...]}", http.StatusBadRequest)
			return
		}
		if err := cfg.Segments.MarkIngested(ack.Names); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.Handle("GET /segments/{name}", auth(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if !logfmt.ValidSegmentName(name) {
			http.Error(w, "not a segment name", http.StatusBadRequest)
			return
		}
		f, err := os.Open(filepath.Join(cfg.LogDir, name))
		if os.IsNotExist(err) {
			http.Error(w, "no such segment", http.StatusNotFound)
			return
		}
		if err != nil {
			logger.Error("open segment", "segment", name, "err", err)
			http.Error(w, "segment unreadable", http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, "segment unreadable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.apache.arrow.stream")
		http.ServeContent(w, r, name, st.ModTime(), f)
	}))
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
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok:
		return none
	case cfg.Token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(cfg.Token)) == 1:
		return full
	case cfg.ReadToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(cfg.ReadToken)) == 1:
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
			w.Header().Set("WWW-Authenticate", `Bearer realm="shortfleet-admin"`)
			http.Error(w, "admin token required", http.StatusUnauthorized)
		}
	})
}
