package admin

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shortfleet/logfmt"
)

// FuzzAdmin sends arbitrary methods, paths, tokens and bodies to the admin
// handler, the segment API's query parameters included: without a token
// nothing but /healthz and /readyz answers with success; the read token
// adds /metrics and nothing else, and every segment endpoint refuses it
// with 401 or 403; with the admin token, nothing fails with a 5xx, and a
// segment is served only under a segment's name, from the log folder,
// byte for byte.
func FuzzAdmin(f *testing.F) {
	dir := f.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "proxy-07"}, logger)
	if err != nil {
		f.Fatal(err)
	}
	defer w.Close()
	w.Append(&logfmt.Record{Time: 1, Status: 302, LinkID: 9})
	w.Rotate()
	os.WriteFile(filepath.Join(dir, "20261122T000000.000000000Z.arrows.open"), []byte("partial"), 0o644)
	entries, _ := logfmt.ReadManifest(dir)
	name := entries[0].Name
	const token, readToken = "s3cret", "r3ad-only"
	h := Handler(Config{Proxy: "proxy-07", LogDir: dir, Token: token, ReadToken: readToken, Segments: w,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("m 1\n")) })}, logger)
	for _, s := range []struct{ method, path, auth, body string }{
		{"GET", "/segments", "Bearer " + token, ""},
		{"GET", "/segments?all=1", "Bearer " + token, ""},
		{"GET", "/segments?all=%zz&all=", "Bearer " + token, ""},
		{"GET", "/segments/" + name, "Bearer " + token, ""},
		{"GET", "/segments/" + name, "Bearer s3cre", ""},
		{"GET", "/segments/..%2fmanifest.jsonl", "Bearer " + token, ""},
		{"POST", "/segments/ingested", "Bearer " + token, `{"names":["` + name + `"]}`},
		{"POST", "/segments/ingested", "bearer " + token, `{"names":["../x"]}`},
		{"GET", "/metrics", "Bearer  " + token, ""},
		{"GET", "/debug/pprof/", "", ""},
		{"GET", "/healthz", "", ""},
		{"GET", "/metrics", "Bearer " + readToken, ""},
		{"GET", "/segments", "Bearer " + readToken, ""},
		{"GET", "/segments?all=1", "Bearer " + readToken, ""},
		{"GET", "/segments/" + name, "Bearer " + readToken, ""},
		{"HEAD", "/segments/" + name, "Bearer " + readToken, ""},
		{"GET", "/segments/..%2fmanifest.jsonl", "Bearer " + readToken, ""},
		{"POST", "/segments/ingested", "Bearer " + readToken, `{"names":["` + name + `"]}`},
		{"GET", "/debug/pprof/heap", "Bearer " + readToken, ""},
		{"GET", "/metrics", "Bearer " + readToken + "x", ""},
	} {
		f.Add(s.method, s.path, s.auth, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, auth, body string) {
		u, err := url.Parse("http://proxy.example" + path)
		if err != nil || !validMethod(method) || strings.HasPrefix(u.Path, "/debug/pprof/profile") || strings.HasPrefix(u.Path, "/debug/pprof/trace") {
			return // not a request net/http would hand over; profiles take seconds
		}
		req := httptest.NewRequest("GET", "/", strings.NewReader(body))
		req.Method, req.URL, req.RequestURI = method, u, u.RequestURI()
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		st := rec.Code
		if st >= 500 {
			t.Fatalf("%s %q: %d %s", method, path, st, rec.Body)
		}
		authorised := auth == "Bearer "+token
		reader := auth == "Bearer "+readToken
		get := method == "GET" || method == "HEAD"
		open := get && (u.Path == "/healthz" || u.Path == "/readyz")
		if st < 300 && !authorised && !open && !(reader && get && u.Path == "/metrics") {
			t.Fatalf("%s %q with Authorization %q: %d without the token", method, path, auth, st)
		}
		// Every segment endpoint the mux routes refuses the read token
		// before it looks at the name or the body. (A path it does not
		// route is 404 or 405 to everyone, or redirected to its clean
		// form.)
		if reader && strings.HasPrefix(u.Path, "/segments") && st != 401 && st != 403 &&
			st != 404 && st != 405 && !(st >= 300 && st < 400) {
			t.Fatalf("%s %q with the read token: %d, want 401 or 403", method, path, st)
		}
		if seg, ok := strings.CutPrefix(u.Path, "/segments/"); ok && st == 200 && method == "GET" {
			if !logfmt.ValidSegmentName(seg) {
				t.Fatalf("served %q, not a segment name", seg)
			}
			want, err := os.ReadFile(filepath.Join(dir, seg))
			if err != nil || rec.Body.String() != string(want) {
				t.Fatalf("served %q: %d bytes, not the file's", seg, rec.Body.Len())
			}
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}
