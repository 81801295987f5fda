package wrk

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRedirectsScript runs bench/wrk/redirects.lua under the real wrk
// against a server that counts what it is asked, and checks the summary
// the driver parses, the Zipf skew of the codes (and its absence without
// ZIPF_S), random codes with RANDOM_CODES, and the mix of request headers.
func TestRedirectsScript(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatalf("wrk is not installed (provisioning/deps.sh installs it): %v", err)
	}
	var mu sync.Mutex
	agents := map[string]bool{}
	withLang := 0
	// Each run has a server of its own: a request of the run before that
	// the server answers only after wrk stopped (seen under load) must
	// not be counted in the next.
	newServer := func(t *testing.T, paths map[string]int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths[strings.TrimPrefix(r.URL.Path, "/")]++
			agents[r.UserAgent()] = true
			if r.Header.Get("Accept-Language") != "" {
				withLang++
			}
			mu.Unlock()
			w.Header().Set("Location", "https://example.com/")
			w.WriteHeader(http.StatusFound)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	const n = 20
	codesFile := filepath.Join(t.TempDir(), "codes.txt")
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "c%02d\n", i)
	}
	os.WriteFile(codesFile, []byte(b.String()), 0o644)

	run := func(t *testing.T, env ...string) (Result, map[string]int) {
		t.Helper()
		paths := map[string]int{}
		srv := newServer(t, paths)
		res, err := Run(context.Background(), Options{URL: srv.URL, Script: "../../wrk/redirects.lua", Threads: 1, Connections: 2,
			Duration: time.Second, Env: append([]string{"CODES=" + codesFile}, env...)})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		got := map[string]int{}
		total := 0
		for k, v := range paths {
			got[k] = v
			total += v
		}
		// wrk counts the answers it read before its deadline; the server
		// may have answered a few more as wrk stopped (seen: 4 more on
		// 2 connections, with the machine loaded).
		// The floor is low: under load wrk's second has made 3,500 requests
		// against 30,000 idle, and drawnAbout scales with the count.
		if res.Requests < 200 || int64(total) < res.Requests || int64(total) > res.Requests+10 {
			t.Fatalf("wrk reports %d requests, the server answered %d", res.Requests, total)
		}
		if res.Errors() != 0 || res.LatP99US <= 0 || res.LatP50US > res.LatP99US || res.RPS() <= 0 {
			t.Fatalf("implausible summary %+v", res)
		}
		return res, got
	}

	t.Run("zipf", func(t *testing.T) {
		res, got := run(t, "ZIPF_S=1.1")
		// Rank r is drawn with probability r^-s / H.
		h := 0.0
		for r := 1; r <= n; r++ {
			h += math.Pow(float64(r), -1.1)
		}
		for _, r := range []int{1, 2, 5} {
			want := float64(res.Requests) * math.Pow(float64(r), -1.1) / h
			if g := float64(got[fmt.Sprintf("c%02d", r)]); !drawnAbout(g, want, 0.15) {
				t.Errorf("rank %d drawn %.0f times, want about %.0f", r, g, want)
			}
		}
		if got["c01"] < 4*got["c20"] {
			t.Errorf("no skew: rank 1 %d times, rank 20 %d times", got["c01"], got["c20"])
		}
	})
	// CODES_FIXED: the file held as one string, Zipf ranks drawn by
	// rejection-inversion; the same distributions as the tables give.
	t.Run("zipf, fixed-width", func(t *testing.T) {
		res, got := run(t, "ZIPF_S=1.1", "CODES_FIXED=1")
		h := 0.0
		for r := 1; r <= n; r++ {
			h += math.Pow(float64(r), -1.1)
		}
		for _, r := range []int{1, 2, 5, 20} {
			want := float64(res.Requests) * math.Pow(float64(r), -1.1) / h
			if g := float64(got[fmt.Sprintf("c%02d", r)]); !drawnAbout(g, want, 0.15) {
				t.Errorf("rank %d drawn %.0f times, want about %.0f", r, g, want)
			}
		}
		for code := range got {
			if len(code) != 3 || !strings.HasPrefix(code, "c") {
				t.Fatalf("drew %q, not a line of the file", code)
			}
		}
	})
	t.Run("uniform, fixed-width", func(t *testing.T) {
		res, got := run(t, "CODES_FIXED=1")
		want := float64(res.Requests) / n
		for i := 1; i <= n; i++ {
			if g := float64(got[fmt.Sprintf("c%02d", i)]); !drawnAbout(g, want, 0) {
				t.Errorf("code %d drawn %.0f times, want about %.0f", i, g, want)
			}
		}
	})
	t.Run("fixed-width refuses lines of unequal length", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.txt")
		os.WriteFile(bad, []byte("c01\nc2\nc03\nc004\n"), 0o644)
		_, err := Run(context.Background(), Options{URL: newServer(t, map[string]int{}).URL, Script: "../../wrk/redirects.lua", Threads: 1, Connections: 1,
			Duration: time.Second, Env: []string{"CODES=" + bad, "CODES_FIXED=1"}})
		if err == nil || !strings.Contains(err.Error(), "unequal length") {
			t.Fatalf("got %v, want wrk to stop on lines of unequal length", err)
		}
	})
	t.Run("uniform", func(t *testing.T) {
		res, got := run(t)
		want := float64(res.Requests) / n
		for i := 1; i <= n; i++ {
			if g := float64(got[fmt.Sprintf("c%02d", i)]); !drawnAbout(g, want, 0) {
				t.Errorf("code %d drawn %.0f times, want about %.0f", i, g, want)
			}
		}
	})
	t.Run("random codes", func(t *testing.T) {
		res, got := run(t, "RANDOM_CODES=1")
		for code := range got {
			if len(code) != 7 || strings.Trim(code, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
				t.Fatalf("random code %q is not 7 base62 characters", code)
			}
		}
		// Codes of 62^7 are almost never drawn twice.
		if float64(len(got)) < 0.99*float64(res.Requests) {
			t.Errorf("%d distinct codes in %d requests", len(got), res.Requests)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if len(agents) < 8 || withLang == 0 {
		t.Errorf("got %d user agents and %d requests with Accept-Language; want a mix", len(agents), withLang)
	}
}

// drawnAbout reports whether a code drawn g times matches the want draws
// its probability gives: within slack (a share of want, for a model only
// approximated) plus 5 standard deviations of a binomial count, at most
// sqrt(want). A fixed share alone failed under load: CI's wrk, sharing
// 2 cores with the fleet's tests, made 3,500 requests where an idle
// machine makes 30,000, and 30% of 175 draws is only 4 deviations.
func drawnAbout(g, want, slack float64) bool {
	return math.Abs(g-want) <= slack*want+5*math.Sqrt(want)
}
