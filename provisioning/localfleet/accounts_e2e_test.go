package localfleet_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"shortfleet/provisioning/localfleet"
)

// TestDeletedAccountAnswers410: a deleted account's links, by code and
// by alias, each followed twice through every proxy first (so every proxy
// has it cached), answer 410 from every proxy once the account is deleted
// through the API: the tombstones' change feed rows reach each proxy's
// replica and evict the cached entries. Another account's link keeps
// redirecting. Real binaries, Postgres and replicas.
func TestDeletedAccountAnswers410(t *testing.T) {
	t.Parallel() // functional, not timed: three at a time (make test -parallel 3), after the timed drills, to keep make test under 20 minutes
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := startFleetWith(t, localfleet.Config{Proxies: 2, NoBalancer: true})
	base := f.PrimaryURL()
	key, links := signupWithLinks(t, base, "leaving@example.com", 2, "https://example.com/leaving/%d")
	var aliased link
	if code := api(t, "POST", base+"/api/links", key, map[string]any{"target": "https://example.com/leaving/alias", "alias": "leaving-alias"}, &aliased); code != 201 {
		t.Fatalf("create the aliased link: %d", code)
	}
	_, staying := signupWithLinks(t, base, "staying@example.com", 1, "https://example.com/staying/%d")
	if err := f.WaitReplicas(ctx); err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	status := func(url string) int {
		t.Helper()
		resp, err := noFollow.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	paths := []string{"/" + links[0].Code, "/" + links[1].Code, "/" + aliased.Code, "/leaving-alias"}
	for _, proxy := range f.RedirectURLs() {
		for _, p := range paths {
			for range 2 { // the second answer comes from the proxy's cache
				if st := status(proxy + p); st != http.StatusFound {
					t.Fatalf("%s%s before the deletion: %d, want 302", proxy, p, st)
				}
			}
		}
	}

	var out struct {
		LinksDisabled int `json:"links_disabled"`
	}
	start := time.Now()
	if code := api(t, "DELETE", base+"/api/account", key, map[string]string{"password": "a long enough password"}, &out); code != 200 || out.LinksDisabled != 3 {
		t.Fatalf("delete the account: %d, %d links disabled, want 200 and 3", code, out.LinksDisabled)
	}
	for _, proxy := range f.RedirectURLs() {
		for _, p := range paths {
			waitUntil(t, ctx, func() bool { return status(proxy+p) == http.StatusGone })
		}
	}
	t.Logf("every proxy answered 410 for every path %s after the deletion was acknowledged", time.Since(start).Round(time.Millisecond))
	for _, proxy := range f.RedirectURLs() {
		if st := status(proxy + "/" + staying[0].Code); st != http.StatusFound {
			t.Fatalf("%s: another account's link answers %d, want 302", proxy, st)
		}
	}
	if code := api(t, "GET", base+"/api/links", key, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("the deleted account's key: %d, want 401", code)
	}
}
