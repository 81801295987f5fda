//go:build !race

package redirect

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"shortfleet/proxy/internal/geo"
	"shortfleet/proxy/internal/geo/geotest"
)

// TestCachedRedirectAllocs: a cached redirect, logged in full, does not
// allocate, from a client straight or through a trusted balancer (whose
// X-Forwarded-For lines and X-Client-Port are read), for a plain link and
// for one with an expiry, forwarded query and rules of every kind, none
// matching, so all are evaluated. (The race detector allocates, hence the
// build tag; make test runs this file without -race as well.)
func TestCachedRedirectAllocs(t *testing.T) {
	e := setup(t, setupOpts{trusted: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	raw, err := geotest.Build(geotest.MaxMind, map[string]string{"203.0.113.0/24": "BR"})
	if err != nil {
		t.Fatal(err)
	}
	if e.srv.cfg.Countries, err = geo.OpenBytes(raw); err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(24 * time.Hour)
	e.ids["rules"] = e.featureLink("https://example.com/a?b=c", &expires, true, `[
		{"kind":"device","value":"ios","target":"https://example.com/ios"},
		{"kind":"language","value":"fr","target":"https://example.com/fr"},
		{"kind":"country","value":"FR","target":"https://example.com/fr"}]`)
	e.waitReplay()
	for _, link := range []string{"302", "rules"} {
		t.Run(link, func(t *testing.T) { cachedRedirectAllocs(t, e, link) })
	}
}

func cachedRedirectAllocs(t *testing.T, e *env, link string) {
	for _, c := range []struct {
		name    string
		peer    net.IP
		headers [][2]string
	}{
		{"direct", net.IPv4(203, 0, 113, 4), nil},
		{"balancer", net.IPv4(198, 51, 100, 7), [][2]string{{"X-Forwarded-For", "192.0.2.9"}, {"X-Forwarded-For", "1.2.3.4, 203.0.113.4"},
			{"X-Client-Port", "40000"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var req fasthttp.Request
			req.Header.SetMethod("GET")
			req.SetRequestURI("/" + e.code(e.ids[link]) + "?utm_source=newsletter")
			req.Header.Set("Host", "sho.rt")
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
			req.Header.Set("Referer", "https://news.example/article")
			req.Header.Set("Accept-Language", "en-GB,en;q=0.9")
			req.Header.Set("Accept", "text/html,application/xhtml+xml")
			// Redacted headers are logged without allocating too.
			req.Header.Set("Cookie", "session=0123456789abcdef")
			req.Header.Set("Authorization", "Bearer 0123456789abcdef")
			for _, h := range c.headers {
				req.Header.Add(h[0], h[1])
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: c.peer, Port: 40000}, nil)
			if a, p := e.srv.clientAddr(&ctx); a.String() != "203.0.113.4" || p != 40000 {
				t.Fatalf("client %v port %d, want 203.0.113.4 port 40000", a, p)
			}
			e.srv.Handle(&ctx) // fills the cache
			if ctx.Response.StatusCode() != 302 {
				t.Fatalf("warm-up: %d", ctx.Response.StatusCode())
			}
			hits := e.resolver.Stats().Hits
			allocs := testing.AllocsPerRun(20_000, func() {
				ctx.Response.Reset()
				e.srv.Handle(&ctx)
			})
			if ctx.Response.StatusCode() != 302 || e.resolver.Stats().Hits < hits+20_000 {
				t.Fatalf("not served from the cache: %d", ctx.Response.StatusCode())
			}
			want := "https://example.com/a?b=c"
			if link == "rules" {
				want += "&utm_source=newsletter" // forwarded; no rule matched
			}
			if got := string(ctx.Response.Header.Peek("Location")); got != want {
				t.Fatalf("Location %q, want %q", got, want)
			}
			if allocs != 0 {
				t.Fatalf("%v allocations per cached redirect, want 0", allocs)
			}
		})
	}
}
