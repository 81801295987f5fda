package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"shortfleet/logfmt/ship"
)

// TestWindow writes a small window, decodes every record of it back, and
// lists its segments through the real segment API, with the client the
// mapreduce job uses.
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
		l, skipped, err := ship.Client{BaseURL: u, Token: Token}.List(context.Background(), false)
		if err != nil || len(skipped) != 0 {
			t.Fatalf("segments listing of %s: %v, skipped %v", u, err, skipped)
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
