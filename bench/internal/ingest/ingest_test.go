package ingest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"shortfleet/proxy/admin"
)

// TestWindow writes a small window, decodes every record of it back, and
// lists its segments through the real admin API.
func TestWindow(t *testing.T) {
	w, err := Write(filepath.Join(t.TempDir(), "win"), "test", 2, 6000, 3, 1000, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Records != 6000 || w.Segments < 6 || w.Bytes == 0 || len(w.URLs) != 2 {
		t.Fatalf("got %d records in %d segments (%d bytes) on %d proxies; want 6000 records, at least 6 segments, 2 proxies", w.Records, w.Segments, w.Bytes, len(w.URLs))
	}
	rate, err := w.Decode()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("decoded %d records at %.0f records/s", w.Records, rate)
	if rate <= 0 {
		t.Fatalf("decode rate %v", rate)
	}
	var rows int64
	for i, u := range w.URLs {
		req, _ := http.NewRequest("GET", u+"/segments", nil)
		req.Header.Set("Authorization", "Bearer "+Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var l admin.Listing
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("segments listing of %s: %d, %v", u, resp.StatusCode, err)
		}
		if want := fmt.Sprintf("test-%02d", i+1); l.Proxy != want {
			t.Fatalf("listing names proxy %q, want %q", l.Proxy, want)
		}
		for _, e := range l.Segments {
			rows += e.Rows
		}
	}
	if rows != w.Records {
		t.Fatalf("the admin APIs list %d rows, the window has %d", rows, w.Records)
	}
}
