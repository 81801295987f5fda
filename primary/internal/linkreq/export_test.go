package linkreq

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"shortfleet/primary/internal/store"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/sql/codes"
)

// TestExport: the export both front ends answer holds every link of the
// account, across more than one page of the store, oldest first, and no
// other account's; when the store fails it writes nothing, so the front
// end can still answer with an error status.
func TestExport(t *testing.T) {
	_, db := pgcluster.StartTestDatabase(t)
	codec, _ := codes.New([]byte("linkreq-test-key-0123456789"))
	st := store.New(db, codec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(st.Close)
	ctx := context.Background()
	a, _, err := st.CreateUser(ctx, "a@example.com", "not a real hash")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := st.CreateUser(ctx, "b@example.com", "not a real hash")
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*exportPage + 3 // three pages, the last a short one
	var ns []store.NewLink
	for i := range n {
		ns = append(ns, store.NewLink{Target: fmt.Sprintf("https://a.example/%d", i)})
	}
	ns[7].Alias = "seventh-link"
	ns[7].Tags = []string{"spring"}
	ns[n-1].Tags = []string{"sale", "spring"}
	if _, err := st.CreateLinks(ctx, a.ID, ns[:n/2]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateLink(ctx, b.ID, store.NewLink{Target: "https://b.example/"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateLinks(ctx, a.ID, ns[n/2:]); err != nil {
		t.Fatal(err)
	}

	w := httptest.NewRecorder()
	if err := Export(ctx, st, a.ID, "https://sho.rt", "", false, w); err != nil {
		t.Fatal(err)
	}
	if ct, cd := w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"); ct != "text/csv; charset=utf-8" || cd != `attachment; filename="links.csv"` {
		t.Fatalf("headers %q, %q", ct, cd)
	}
	recs, err := csv.NewReader(w.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n+1 {
		t.Fatalf("got %d rows, want a header and %d links", len(recs), n)
	}
	for i, rec := range recs[1:] {
		if want := "https://a.example/" + strconv.Itoa(i); rec[3] != want {
			t.Fatalf("row %d: target %q, want %q", i+1, rec[3], want)
		}
		if rec[1] != "https://sho.rt/"+rec[0] {
			t.Fatalf("row %d: short URL %q for code %q", i+1, rec[1], rec[0])
		}
	}
	if recs[8][2] != "seventh-link" || recs[8][8] != "spring" || recs[n][8] != "sale spring" || recs[1][8] != "" {
		t.Fatalf("rows 8, %d and 1: alias %q, tags %q, %q, %q", n, recs[8][2], recs[8][8], recs[n][8], recs[1][8])
	}

	// By tag: only the two links carrying it, as CSV and as JSON.
	w = httptest.NewRecorder()
	if err := Export(ctx, st, a.ID, "https://sho.rt", "spring", false, w); err != nil {
		t.Fatal(err)
	}
	recs, err = csv.NewReader(w.Body).ReadAll()
	if err != nil || len(recs) != 3 || recs[1][2] != "seventh-link" || recs[2][3] != fmt.Sprintf("https://a.example/%d", n-1) ||
		w.Header().Get("Content-Disposition") != `attachment; filename="links-spring.csv"` {
		t.Fatalf("export by tag: %v, %v, %q", recs, err, w.Header())
	}
	w = httptest.NewRecorder()
	if err := Export(ctx, st, a.ID, "https://sho.rt", "sale", true, w); err != nil {
		t.Fatal(err)
	}
	var out struct{ Links []LinkJSON }
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.Links) != 1 || out.Links[0].ShortURL == "" ||
		strings.Join(out.Links[0].Tags, ",") != "sale,spring" || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("JSON export by tag: %s, %v", w.Body, err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	w = httptest.NewRecorder()
	if err := Export(cancelled, st, a.ID, "https://sho.rt", "", false, w); err == nil {
		t.Fatal("export with a cancelled context: no error")
	}
	if len(w.Header()) != 0 || w.Body.Len() != 0 || w.Code != 200 || w.Flushed {
		t.Fatalf("a failed export wrote %v %q", w.Header(), w.Body)
	}
}
