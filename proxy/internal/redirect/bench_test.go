package redirect

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHandleCached measures a cached redirect in-process, with and
// without logging, on every core; the log writer's compression runs on the
// same cores, so its cost is in the figure.
func BenchmarkHandleCached(b *testing.B) {
	e := setupB(b)
	for _, mode := range []string{"logged", "unlogged"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "unlogged" {
				e.srv.log = nil
			} else {
				e.srv.log = e.logw
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var req fasthttp.Request
				req.Header.SetMethod("GET")
				req.SetRequestURI("/" + e.code(e.ids["302"]))
				req.Header.Set("Host", "sho.rt")
				req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
				req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
				req.Header.Set("Accept-Language", "de-CH,de;q=0.9,en;q=0.8")
				req.Header.Set("Accept-Encoding", "gzip, deflate, br")
				req.Header.Set("Referer", "https://www.google.com/")
				var ctx fasthttp.RequestCtx
				ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(203, 0, 113, 4), Port: 40000}, nil)
				for pb.Next() {
					ctx.Response.Reset()
					e.srv.Handle(&ctx)
				}
			})
		})
	}
}
