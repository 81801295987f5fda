package linkreq

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
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
	if err := Export(ctx, st, a.ID, "https://sho.rt", w); err != nil {
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
	if recs[8][2] != "seventh-link" {
		t.Fatalf("row 8: alias %q", recs[8][2])
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	w = httptest.NewRecorder()
	if err := Export(cancelled, st, a.ID, "https://sho.rt", w); err == nil {
		t.Fatal("export with a cancelled context: no error")
	}
	if len(w.Header()) != 0 || w.Body.Len() != 0 || w.Code != 200 || w.Flushed {
		t.Fatalf("a failed export wrote %v %q", w.Header(), w.Body)
	}
}
