// Package admin is the proxy's admin listener: health, and the sealed
// segments of its access log, listed and served to the mapreduce job behind
// a bearer token. It is not internal so that the mapreduce job's tests pull
// real segments through the real API.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"shortfleet/logfmt"
)

// Config configures the admin handler.
type Config struct {
	// Proxy is this proxy's id.
	Proxy string
	// LogDir is the access log folder.
	LogDir string
	// Token guards the segment endpoints; it must not be empty.
	Token string
}

// Listing is the answer to GET /segments.
type Listing struct {
	Proxy    string         `json:"proxy"`
	Segments []logfmt.Entry `json:"segments"`
}

// Handler returns the admin HTTP handler.
func Handler(cfg Config, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /segments", requireToken(cfg.Token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entries, err := logfmt.ReadManifest(cfg.LogDir)
		if err != nil {
			logger.Error("read manifest", "err", err)
			http.Error(w, "manifest unreadable", http.StatusInternalServerError)
			return
		}
		if entries == nil {
			entries = []logfmt.Entry{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Listing{Proxy: cfg.Proxy, Segments: entries})
	})))
	mux.Handle("GET /segments/{name}", requireToken(cfg.Token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})))
	return mux
}

// requireToken refuses requests without the bearer token.
func requireToken(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shortfleet-admin"`)
			http.Error(w, "admin token required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
