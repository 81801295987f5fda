package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/valyala/fasthttp"
)

// Bare answers, as the proxy's redirect listener answers a cached link,
// and nothing else: the header values fasthttp copies in are the same.
var (
	bareLocation = []byte("https://example.com/landing/1000000?utm_source=bench")
	bareCache    = []byte("private, no-store")
	keyLocation  = []byte(fasthttp.HeaderLocation)
	keyCache     = []byte(fasthttp.HeaderCacheControl)
)

// serveBare serves a bare fasthttp 302 on addr until SIGINT or SIGTERM:
// the proxy's fasthttp server settings (redirect.HTTPServer with
// redirect.DefaultLimits), no decoding, no cache, no log. What the proxy
// spends beyond it is the proxy's own.
func serveBare(addr string) {
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			h := &ctx.Response.Header
			h.SetStatusCode(fasthttp.StatusFound)
			h.SetContentLength(0)
			h.SetCanonical(keyLocation, bareLocation)
			h.SetCanonical(keyCache, bareCache)
		},
		Name:        "shortfleet",
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
		ReadBufferSize: 8 << 10, MaxRequestBodySize: 4 << 10, NoDefaultContentType: true,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench -serve-bare:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	go func() { <-sig; srv.Shutdown() }()
	srv.Serve(ln)
}
