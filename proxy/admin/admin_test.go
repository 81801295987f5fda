package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"shortfleet/logfmt"
)

func TestSegmentAPI(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "proxy-07"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	w.Append(&logfmt.Record{Time: 1, Status: 302, LinkID: 9})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// A segment being written is not listed nor served.
	os.WriteFile(filepath.Join(dir, "20261122T000000.000000000Z.arrows.open"), []byte("partial"), 0o644)
	srv := httptest.NewServer(Handler(Config{Proxy: "proxy-07", LogDir: dir, Token: "s3cret"}, logger))
	defer srv.Close()

	get := func(path, token string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}

	if resp, _ := get("/healthz", ""); resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	for _, tok := range []string{"", "wrong", "s3cre", "s3cret2"} {
		for _, p := range []string{"/segments", "/segments/x"} {
			if resp, _ := get(p, tok); resp.StatusCode != 401 {
				t.Fatalf("%s with token %q: %d, want 401", p, tok, resp.StatusCode)
			}
		}
	}
	resp, body := get("/segments", "s3cret")
	var l Listing
	if err := json.Unmarshal(body, &l); err != nil || resp.StatusCode != 200 {
		t.Fatalf("listing %d %s: %v", resp.StatusCode, body, err)
	}
	if l.Proxy != "proxy-07" || len(l.Segments) != 1 || l.Segments[0].Rows != 1 {
		t.Fatalf("listing %+v", l)
	}
	e := l.Segments[0]
	resp, body = get("/segments/"+e.Name, "s3cret")
	sum := sha256.Sum256(body)
	if resp.StatusCode != 200 || int64(len(body)) != e.Bytes || hex.EncodeToString(sum[:]) != e.SHA256 {
		t.Fatalf("download: %d, %d bytes, sha %x; manifest %+v", resp.StatusCode, len(body), sum, e)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/segments/20261122T000000.000000000Z.arrows.open", 400},
		{"/segments/manifest.jsonl", 400},
		{"/segments/..%2f..%2fetc%2fpasswd", 400},
		{"/segments/20991122T000000.000000000Z.arrows", 404},
	} {
		if resp, _ := get(tc.path, "s3cret"); resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
	}
}
