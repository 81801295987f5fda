// Package ship is how sealed access log segments travel from the proxy
// that wrote them to the mapreduce job that ingests them: the wire types,
// the HTTP handler a proxy's admin listener mounts to list, serve and take
// acknowledgements of its log folder's segments, the bearer-token check
// that guards it, and the one client every reader of a proxy's admin
// listener uses (the job, the primary's fleet page, the benchmarks).
//
// It lives beside the format it carries so that no binary imports
// another's packages: the proxy serves with it, the others read with it.
//
// # Endpoints
//
//	GET  /segments             {"proxy": id, "segments": [Entry...]}: the pending sealed segments
//	GET  /segments?all=1       the same, listing every sealed segment the manifest still has
//	GET  /segments/{name}      a sealed segment's bytes (application/vnd.apache.arrow.stream)
//	POST /segments/ingested    {"names": [...]}: these are in the job's ledger; 204
//
// Every one of them needs the bearer token its guard asks for; the client
// sends Token as "Authorization: Bearer <Token>" on every request.
package ship

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

// Listing is the answer to GET /segments.
type Listing struct {
	Proxy    string         `json:"proxy"`
	Segments []logfmt.Entry `json:"segments"`
}

// Ack is the body of POST /segments/ingested.
type Ack struct {
	Names []string `json:"names"`
}

// Index is the log writer's index of a folder's sealed segments, as
// logfmt.Writer keeps it: those not yet acknowledged, and the
// acknowledgement itself.
type Index interface {
	Pending() []logfmt.Entry
	MarkIngested(names []string) error
}

// Folder is one proxy's log folder, as Handler ships it.
type Folder struct {
	// Proxy is the proxy's id, named in every listing.
	Proxy string
	// Dir is the log folder: segments are served from it and ?all=1 reads
	// its manifest.
	Dir string
	// Index is the writer's index of Dir.
	Index Index
}

// Guard wraps a handler with an access check: it calls next only for a
// request allowed through, and answers the others itself.
type Guard func(next http.Handler) http.Handler

// Bearer reports whether r carries token as "Authorization: Bearer
// <token>". It compares in constant time, so the answer's timing does not
// tell how much of a guess was right; an empty token matches nothing.
func Bearer(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// Unauthorized answers a request that does not carry the admin token: 401
// with a bearer challenge.
func Unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="shortfleet-admin"`)
	http.Error(w, "admin token required", http.StatusUnauthorized)
}

// RequireBearer is the guard that lets through only requests carrying
// token (see Bearer) and answers the others with Unauthorized.
func RequireBearer(token string) Guard {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !Bearer(r, token) {
				Unauthorized(w)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Handler serves f's segment endpoints (see the package comment), each
// behind guard, which must not be nil: the segments are raw logs, and an
// acknowledgement lets the proxy delete them. Mount it at both "/segments"
// and "/segments/". It routes by method and path before guard runs, so a
// path it does not serve is 404 (or 405) to everyone, as on any mux.
func Handler(f Folder, guard Guard, logger *slog.Logger) http.Handler {
	if guard == nil {
		panic("ship: Handler needs a guard")
	}
	mux := http.NewServeMux()
	mux.Handle("GET /segments", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var entries []logfmt.Entry
		if r.URL.Query().Get("all") != "" {
			var err error
			if entries, err = logfmt.ReadManifest(f.Dir); err != nil {
				logger.Error("read manifest", "err", err)
				http.Error(w, "manifest unreadable", http.StatusInternalServerError)
				return
			}
		} else {
			entries = f.Index.Pending()
		}
		if entries == nil {
			entries = []logfmt.Entry{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Listing{Proxy: f.Proxy, Segments: entries})
	})))
	mux.Handle("POST /segments/ingested", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ack Ack
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&ack); err != nil {
			http.Error(w, "body must be {\"names\": [...]}", http.StatusBadRequest)
			return
		}
		if err := f.Index.MarkIngested(ack.Names); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	mux.Handle("GET /segments/{name}", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		// Only a sealed segment's name: never the manifest, an open
		// segment, or a path out of the folder.
		if !logfmt.ValidSegmentName(name) {
			http.Error(w, "not a segment name", http.StatusBadRequest)
			return
		}
		file, err := os.Open(filepath.Join(f.Dir, name))
		if os.IsNotExist(err) {
			http.Error(w, "no such segment", http.StatusNotFound)
			return
		}
		if err != nil {
			logger.Error("open segment", "segment", name, "err", err)
			http.Error(w, "segment unreadable", http.StatusInternalServerError)
			return
		}
		defer file.Close()
		st, err := file.Stat()
		if err != nil {
			http.Error(w, "segment unreadable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.apache.arrow.stream")
		http.ServeContent(w, r, name, st.ModTime(), file)
	})))
	return mux
}
