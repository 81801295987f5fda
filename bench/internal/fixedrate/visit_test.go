package fixedrate

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestRedirect: a 302 counts as success and is not followed, anything
// else is a failure, and the visits carry varying browser headers.
func TestRedirect(t *testing.T) {
	var mu sync.Mutex
	agents, paths := map[string]bool{}, map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents[r.Header.Get("User-Agent")] = true
		paths[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/ok" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	client := NewClient(nil, 4)
	for i := range 10 {
		if !Redirect(client, srv.URL, "ok", i) {
			t.Fatalf("visit %d: a 302 was not counted as a redirect", i)
		}
	}
	if Redirect(client, srv.URL, "missing", 0) {
		t.Fatalf("a 404 was counted as a redirect")
	}
	if paths["/elsewhere"] != 0 {
		t.Fatalf("the redirect was followed %d times", paths["/elsewhere"])
	}
	if len(agents) < 2 {
		t.Fatalf("got %d user agents over 10 visits, want them to vary", len(agents))
	}
}
