package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shortfleet/logfmt"
	"shortfleet/logfmt/ship"
)

func TestAdmin(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "proxy-07"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 2 {
		w.Append(&logfmt.Record{Time: int64(i + 1), Status: 302, LinkID: 9})
		w.Rotate()
	}
	// A segment being written is neither listed nor served.
	os.WriteFile(filepath.Join(dir, "20261122T000000.000000000Z.arrows.open"), []byte("partial"), 0o644)
	ready, why := true, ""
	srv := httptest.NewServer(Handler(Config{
		Proxy: "proxy-07", LogDir: dir, Token: "s3cret", ReadToken: "r3ad", Segments: w,
		Ready:   func() (bool, string) { return ready, why },
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("m 1\n")) }),
	}, logger))
	defer srv.Close()

	do := func(method, path, token, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	if resp, _ := do("GET", "/healthz", "", ""); resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	if resp, body := do("GET", "/readyz", "", ""); resp.StatusCode != 200 || string(body) != "ready\n" {
		t.Fatalf("readyz: %d %s", resp.StatusCode, body)
	}
	ready, why = false, "replica lags 12s, bound 10s"
	if resp, body := do("GET", "/readyz", "", ""); resp.StatusCode != 503 || !strings.Contains(string(body), why) {
		t.Fatalf("readyz when not ready: %d %s", resp.StatusCode, body)
	}
	for _, tok := range []string{"", "wrong", "s3cre", "s3cret2"} {
		for _, p := range []string{"GET /segments", "GET /segments/x", "GET /metrics", "POST /segments/ingested"} {
			method, path, _ := strings.Cut(p, " ")
			if resp, _ := do(method, path, tok, "{}"); resp.StatusCode != 401 {
				t.Fatalf("%s with token %q: %d, want 401", p, tok, resp.StatusCode)
			}
		}
	}
	if resp, body := do("GET", "/metrics", "s3cret", ""); resp.StatusCode != 200 || string(body) != "m 1\n" {
		t.Fatalf("metrics: %d %s", resp.StatusCode, body)
	}
	// The read token: metrics, and nothing of the segments or profiles.
	if resp, body := do("GET", "/metrics", "r3ad", ""); resp.StatusCode != 200 || string(body) != "m 1\n" {
		t.Fatalf("metrics with the read token: %d %s", resp.StatusCode, body)
	}
	pending := len(w.Pending())
	first := w.Pending()[0].Name
	for _, p := range []string{"GET /segments", "GET /segments?all=1", "GET /segments/" + first, "HEAD /segments/" + first,
		"GET /segments/not-a-segment", "POST /segments/ingested", "GET /debug/pprof/", "GET /debug/pprof/heap"} {
		method, path, _ := strings.Cut(p, " ")
		ack, _ := json.Marshal(ship.Ack{Names: []string{first}})
		if resp, body := do(method, path, "r3ad", string(ack)); resp.StatusCode != 403 {
			t.Fatalf("%s with the read token: %d %s, want 403", p, resp.StatusCode, body)
		}
	}
	if len(w.Pending()) != pending {
		t.Fatalf("the read token acknowledged a segment: %d pending, was %d", len(w.Pending()), pending)
	}
	list := func(q string) ship.Listing {
		resp, body := do("GET", "/segments"+q, "s3cret", "")
		var l ship.Listing
		if err := json.Unmarshal(body, &l); err != nil || resp.StatusCode != 200 {
			t.Fatalf("listing %d %s: %v", resp.StatusCode, body, err)
		}
		return l
	}
	l := list("")
	if l.Proxy != "proxy-07" || len(l.Segments) != 2 || l.Segments[0].Rows != 1 {
		t.Fatalf("listing %+v", l)
	}
	e := l.Segments[0]
	resp, body := do("GET", "/segments/"+e.Name, "s3cret", "")
	sum := sha256.Sum256(body)
	if resp.StatusCode != 200 || int64(len(body)) != e.Bytes || hex.EncodeToString(sum[:]) != e.SHA256 {
		t.Fatalf("download: %d, %d bytes, sha %x; manifest %+v", resp.StatusCode, len(body), sum, e)
	}
	ack, _ := json.Marshal(ship.Ack{Names: []string{e.Name}})
	if resp, body := do("POST", "/segments/ingested", "s3cret", string(ack)); resp.StatusCode != 204 {
		t.Fatalf("ack: %d %s", resp.StatusCode, body)
	}
	if l := list(""); len(l.Segments) != 1 || l.Segments[0].Name == e.Name {
		t.Fatalf("after ack, pending %+v", l.Segments)
	}
	if l := list("?all=1"); len(l.Segments) != 2 {
		t.Fatalf("all segments: %+v", l.Segments)
	}
	// An acknowledged segment can still be downloaded (recompute, audits).
	if resp, b := do("GET", "/segments/"+e.Name, "s3cret", ""); resp.StatusCode != 200 || !bytes.Equal(b, body) {
		t.Fatalf("download after ack: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/segments/20261122T000000.000000000Z.arrows.open", "", 400},
		{"GET", "/segments/manifest.jsonl", "", 400},
		{"GET", "/segments/..%2f..%2fetc%2fpasswd", "", 400},
		{"GET", "/segments/20991122T000000.000000000Z.arrows", "", 404},
		{"POST", "/segments/ingested", `{"names":["../x"]}`, 400},
		{"POST", "/segments/ingested", `not json`, 400},
	} {
		if resp, _ := do(tc.method, tc.path, "s3cret", tc.body); resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}
}

// TestShipClient reads the admin listener with logfmt/ship's client, as
// the mapreduce job and the primary's fleet page do: readiness and its
// reason, metrics with the read token, and with the read token every
// segment call refused with 403 while the admin token lists, fetches and
// acknowledges.
func TestShipClient(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := logfmt.NewWriter(logfmt.WriterConfig{Dir: dir, Proxy: "proxy-07"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Append(&logfmt.Record{Time: 1, Status: 302, LinkID: 9})
	w.Rotate()
	ready, why := true, ""
	srv := httptest.NewServer(Handler(Config{
		Proxy: "proxy-07", LogDir: dir, Token: "s3cret", ReadToken: "r3ad", Segments: w,
		Ready:   func() (bool, string) { return ready, why },
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("# TYPE m counter\nm 1\n")) }),
	}, logger))
	defer srv.Close()
	ctx := context.Background()
	reader := ship.Client{BaseURL: srv.URL, Token: "r3ad"}
	if ok, reason, err := reader.Ready(ctx); !ok || reason != "" || err != nil {
		t.Fatalf("ready: %v %q %v", ok, reason, err)
	}
	ready, why = false, "replica lags 12s, bound 10s"
	if ok, reason, err := reader.Ready(ctx); ok || reason != why || err != nil {
		t.Fatalf("ready when not: %v %q %v, want the reason %q", ok, reason, err, why)
	}
	if m, err := reader.Metrics(ctx); err != nil || len(m) != 1 || m["m"] != 1 {
		t.Fatalf("metrics with the read token: %v, %v", m, err)
	}
	e := w.Pending()[0]
	var se *ship.StatusError
	if _, _, err := reader.List(ctx, false); !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("list with the read token: %v, want 403", err)
	}
	if _, err := reader.Fetch(ctx, e); !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("fetch with the read token: %v, want 403", err)
	}
	if err := reader.Ack(ctx, []string{e.Name}); !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("ack with the read token: %v, want 403", err)
	}
	admin := ship.Client{BaseURL: srv.URL, Token: "s3cret"}
	if l, _, err := admin.List(ctx, false); err != nil || l.Proxy != "proxy-07" || len(l.Segments) != 1 || l.Segments[0] != e {
		t.Fatalf("list with the admin token: %+v, %v", l, err)
	}
	if data, err := admin.Fetch(ctx, e); err != nil || int64(len(data)) != e.Bytes {
		t.Fatalf("fetch with the admin token: %d bytes, %v", len(data), err)
	}
	if err := admin.Ack(ctx, []string{e.Name}); err != nil || len(w.Pending()) != 0 {
		t.Fatalf("ack with the admin token: %v, %d pending", err, len(w.Pending()))
	}
}
