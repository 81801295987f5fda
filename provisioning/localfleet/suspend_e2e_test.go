package localfleet_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestSuspendReachesProxies: an admin suspends an account through the
// primary's admin API; every proxy, which has the account's link in its
// cache, answers 410 for it, through the change feed alone; unsuspended,
// every proxy redirects again (302), and the link its owner had disabled
// stays disabled. A takedown and its restore travel the same way.
func TestSuspendReachesProxies(t *testing.T) {
	t.Parallel() // functional, not timed: see TestFleetAdmin
	f := startFleet(t, 2)
	base := f.PrimaryURL()
	adminKey, _ := signupWithLinks(t, base, "admin@example.com", 0, "")
	if code, out := fleetAdmin(t, f.StateDir(), "admin@example.com"); code != 0 {
		t.Fatalf("fleet admin: exit %d\n%s", code, out)
	}
	key, links := signupWithLinks(t, base, "owner@example.com", 2, "https://example.com/%d")
	on, off := links[0], links[1]
	if code := api(t, "PATCH", base+"/api/links/"+off.Code, key, map[string]any{"disabled": true}, nil); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	var owner struct {
		Users []struct {
			ID int64 `json:"id"`
		} `json:"users"`
	}
	if code := api(t, "GET", base+"/api/admin/users?q=owner@", adminKey, nil, &owner); code != 200 || len(owner.Users) != 1 {
		t.Fatalf("find the owner: %d %+v", code, owner)
	}
	uid := owner.Users[0].ID

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 5 * time.Second}
	status := func(proxy, code string) int {
		t.Helper()
		resp, err := noFollow.Get(proxy + "/" + code)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// everyProxy waits until each proxy answers want for code.
	everyProxy := func(what, code string, want int) {
		t.Helper()
		for _, p := range f.RedirectURLs() {
			waitUntil(t, ctx, func() bool { return status(p, code) == want })
		}
		t.Logf("%s: every proxy answers %d for %s", what, want, code)
	}
	// Cached on every proxy: a second answer comes from the cache.
	everyProxy("created", on.Code, 302)
	everyProxy("disabled by its owner", off.Code, 410)
	for _, p := range f.RedirectURLs() {
		if s := status(p, on.Code); s != 302 {
			t.Fatalf("%s: %d from the cache", p, s)
		}
	}

	if code := api(t, "POST", fmt.Sprintf("%s/api/admin/users/%d/suspend", base, uid), adminKey, nil, nil); code != 200 {
		t.Fatalf("suspend: %d", code)
	}
	everyProxy("suspended", on.Code, 410)
	// The app runs on two instances behind the balancer, each caching
	// keys; each learns of the suspension within its next second.
	waitUntil(t, ctx, func() bool {
		for range 4 {
			if api(t, "GET", base+"/api/links", key, nil, nil) != 403 {
				return false
			}
		}
		return true
	})
	if code := api(t, "POST", fmt.Sprintf("%s/api/admin/users/%d/unsuspend", base, uid), adminKey, nil, nil); code != 200 {
		t.Fatalf("unsuspend: %d", code)
	}
	everyProxy("unsuspended", on.Code, 302)
	for _, p := range f.RedirectURLs() {
		if s := status(p, off.Code); s != 410 {
			t.Fatalf("%s: the link its owner disabled answers %d after unsuspending, want 410", p, s)
		}
	}

	if code := api(t, "POST", base+"/api/admin/links/"+on.Code+"/takedown", adminKey, map[string]string{"reason": "malware"}, nil); code != 200 {
		t.Fatalf("take down: %d", code)
	}
	everyProxy("taken down", on.Code, 410)
	if code := api(t, "POST", base+"/api/admin/links/"+on.Code+"/restore", adminKey, nil, nil); code != 200 {
		t.Fatalf("restore: %d", code)
	}
	everyProxy("restored", on.Code, 302)
}
