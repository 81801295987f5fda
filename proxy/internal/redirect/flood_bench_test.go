package redirect

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/valyala/fasthttp"
)

// linkPasswordParams are the primary's link password costs
// (linkreq.LinkPasswordParams, which a proxy test cannot import): the
// proxy reads them from the stored hash.
var linkPasswordParams = &argon2id.Params{Memory: 9 * 1024, Iterations: 4, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// BenchmarkRedirectsDuringGuessFlood measures how many cached redirects
// of a plain link two clients get per second, logged, with and without a
// flood of wrong guesses at a protected link from eight more clients
// alongside, in alternating windows of one second (medians of 5 each).
// The guesses' bucket is unlimited here, so every one reaches the check
// pool: what is measured is the pool's bound, not the rate limit. It ends
// with "bench: redirects_during_guess_flood RATIO", the redirect rate
// during the flood over the rate without it.
// Run it alone: go test -run '^$' -bench BenchmarkRedirectsDuringGuessFlood -benchtime 1x ./proxy/internal/redirect/
func BenchmarkRedirectsDuringGuessFlood(b *testing.B) {
	e := setupB(b)
	e.srv.pw = newPasswords(PasswordConfig{Burst: 1 << 30, Every: time.Nanosecond})
	id := e.protectedLink("https://example.com/secret", "the right password", linkPasswordParams, false, "")
	e.waitReplay()
	plainPath, guessPath := "/"+e.code(e.ids["302"]), "/"+e.code(id)

	newCtx := func(method, path, body string, ip byte) *fasthttp.RequestCtx {
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI(path)
		req.Header.Set("Host", "sho.rt")
		req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/128.0")
		if body != "" {
			req.Header.SetContentType("application/x-www-form-urlencoded")
			req.SetBodyString(body)
		}
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(203, 0, 113, ip), Port: 40000}, nil)
		return ctx
	}
	var hashed, refused atomic.Int64
	window := func(flood bool) float64 {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		if flood {
			for g := range 8 {
				wg.Go(func() {
					ctx := newCtx("POST", guessPath, "password=a+wrong+guess", byte(100+g))
					for {
						select {
						case <-stop:
							return
						default:
						}
						ctx.Response.Reset()
						e.srv.Handle(ctx)
						switch ctx.Response.StatusCode() {
						case 403:
							hashed.Add(1)
						case 503:
							refused.Add(1)
						default:
							panic(fmt.Sprintf("guess answered %d", ctx.Response.StatusCode()))
						}
					}
				})
			}
		}
		var redirects atomic.Int64
		var rg sync.WaitGroup
		start := time.Now()
		for c := range 2 {
			rg.Go(func() {
				ctx := newCtx("GET", plainPath, "", byte(10+c))
				n := int64(0)
				for time.Since(start) < time.Second {
					ctx.Response.Reset()
					e.srv.Handle(ctx)
					if ctx.Response.StatusCode() != 302 {
						panic(fmt.Sprintf("redirect answered %d", ctx.Response.StatusCode()))
					}
					n++
				}
				redirects.Add(n)
			})
		}
		rg.Wait()
		rate := float64(redirects.Load()) / time.Since(start).Seconds()
		close(stop)
		wg.Wait()
		return rate
	}
	window(false) // warm the cache and the log
	var quiet, flooded []float64
	b.ResetTimer()
	for range b.N * 5 {
		quiet = append(quiet, window(false))
		flooded = append(flooded, window(true))
	}
	median := func(s []float64) float64 { slices.Sort(s); return s[len(s)/2] }
	q, f := median(quiet), median(flooded)
	b.ReportMetric(q, "redirects/s")
	b.ReportMetric(f, "flooded-redirects/s")
	fmt.Printf("redirects/s: %.0f without guesses, %.0f during the flood; guesses hashed %d, refused at once (pool full) %d\n",
		q, f, hashed.Load(), refused.Load())
	fmt.Printf("bench: redirects_during_guess_flood %.3f\n", f/q)
}
