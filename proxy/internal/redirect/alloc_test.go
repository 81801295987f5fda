//go:build !race

package redirect

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestCachedRedirectAllocs: a cached redirect, logged in full, does not
// allocate. (The race detector allocates, hence the build tag; make test
// runs this file without -race as well.)
func TestCachedRedirectAllocs(t *testing.T) {
	e := setup(t, setupOpts{})
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.SetRequestURI("/" + e.code(e.ids["302"]) + "?utm_source=newsletter")
	req.Header.Set("Host", "sho.rt")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	req.Header.Set("Referer", "https://news.example/article")
	req.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	// Redacted headers are logged without allocating too.
	req.Header.Set("Cookie", "session=0123456789abcdef")
	req.Header.Set("Authorization", "Bearer 0123456789abcdef")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(203, 0, 113, 4), Port: 40000}, nil)
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
	if allocs != 0 {
		t.Fatalf("%v allocations per cached redirect, want 0", allocs)
	}
}
