package ship

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"shortfleet/logfmt"
)

// FuzzHandler sends arbitrary methods, paths (with their queries), tokens
// and bodies to the segment handler: nothing succeeds without the token;
// nothing fails with a 5xx; a segment is served only under a segment's
// name, from the log folder, byte for byte. (FuzzAdmin in the proxy checks
// the same through its admin listener, with its read token beside.)
func FuzzHandler(f *testing.F) {
	dir, w := folder(f, 1)
	name := w.Pending()[0].Name
	h := Handler(Folder{Proxy: "proxy-07", Dir: dir, Index: w}, RequireBearer(token), quiet)
	for _, s := range []struct{ method, path, auth, body string }{
		{"GET", "/segments", "Bearer " + token, ""},
		{"GET", "/segments?all=1", "Bearer " + token, ""},
		{"GET", "/segments?all=%zz&all=", "Bearer " + token, ""},
		{"GET", "/segments/" + name, "Bearer " + token, ""},
		{"HEAD", "/segments/" + name, "Bearer " + token, ""},
		{"GET", "/segments/" + name, "Bearer s3cre", ""},
		{"GET", "/segments/" + name, "", ""},
		{"GET", "/segments/..%2fmanifest.jsonl", "Bearer " + token, ""},
		{"GET", "/segments/20261122T000000.000000000Z.arrows.open", "Bearer " + token, ""},
		{"POST", "/segments/ingested", "Bearer " + token, `{"names":["` + name + `"]}`},
		{"POST", "/segments/ingested", "bearer " + token, `{"names":["../x"]}`},
		{"POST", "/segments/ingested", "Bearer " + token, `{"names":`},
		{"PUT", "/segments", "Bearer " + token, ""},
	} {
		f.Add(s.method, s.path, s.auth, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, auth, body string) {
		u, err := url.Parse("http://proxy.example" + path)
		if err != nil || !validMethod(method) {
			return // not a request net/http would hand over
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
		if st < 300 && auth != "Bearer "+token {
			t.Fatalf("%s %q with Authorization %q: %d without the token", method, path, auth, st)
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

// FuzzDecodeListing feeds arbitrary bodies to the client's listing
// decoder, as a broken or hostile proxy would answer GET /segments: it
// never panics, a listing it accepts names a proxy, and every entry it
// keeps validates (the job asks for segments by these names).
func FuzzDecodeListing(f *testing.F) {
	dir, w := folder(f, 1)
	good, _ := json.Marshal(Listing{Proxy: "proxy-07", Segments: w.Pending()})
	manifest, _ := os.ReadFile(filepath.Join(dir, logfmt.ManifestName))
	for _, s := range []string{
		string(good),
		`{"proxy":"p","segments":[` + strings.TrimSpace(string(manifest)) + `,{"name":"../x","version":1,"rows":1,"bytes":1,"sha256":""}]}`,
		`{"proxy":"","segments":[]}`,
		`{"segments":null}`,
		`{"proxy":"p","segments":[{"name":"20261122T000000.000000000Z.arrows","version":0}]}`,
		`[]`, `null`, ``, `{"proxy":"p"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		l, skipped, err := decodeListing(strings.NewReader(body))
		if err != nil {
			if l.Proxy != "" || len(l.Segments) != 0 || skipped != nil {
				t.Fatalf("refused %q (%v) but returned %+v, %v", body, err, l, skipped)
			}
			return
		}
		if l.Proxy == "" {
			t.Fatalf("accepted %q, which names no proxy", body)
		}
		for _, e := range l.Segments {
			if err := e.Validate(); err != nil {
				t.Fatalf("kept %+v: %v", e, err)
			}
		}
	})
}

// FuzzParseMetrics feeds arbitrary text to the client's metrics parser,
// as a proxy's /metrics might answer: every series it returns is the text
// before the last space of a line of the input that is not a comment, and
// its value is that line's last field read as a number (0 if it is none).
func FuzzParseMetrics(f *testing.F) {
	for _, s := range []string{
		"# HELP a A.\n# TYPE a counter\na 1\n",
		"shortfleet_proxy_requests_total{status=\"302\"} 7\nshortfleet_proxy_replica_lag_seconds 0.25\n",
		"a{l=\"x y\"} +Inf\nb NaN\nc -1e-3\n",
		"x\n 1\nno_value \n",
		"a 1 1700000000000\n",
		"a 1\r\nb 2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		m, err := parseMetrics(strings.NewReader(text))
		if err != nil {
			return // a line longer than the scanner's buffer
		}
		lines := map[string]string{} // series -> its last value in text
		for _, l := range strings.Split(text, "\n") {
			l = strings.TrimSuffix(l, "\r")
			if i := strings.LastIndexByte(l, ' '); i > 0 && !strings.HasPrefix(l, "#") {
				lines[l[:i]] = l[i+1:]
			}
		}
		if len(m) != len(lines) {
			t.Fatalf("%q: %d series, want %d: %v", text, len(m), len(lines), m)
		}
		for k, v := range m {
			raw, ok := lines[k]
			if !ok {
				t.Fatalf("%q: series %q is no line's", text, k)
			}
			want, _ := strconv.ParseFloat(raw, 64) // 0 if not a number, ±Inf if out of range
			if v != want && !(math.IsNaN(v) && math.IsNaN(want)) {
				t.Fatalf("%q: %s = %v, want %v", text, k, v, want)
			}
		}
	})
}
