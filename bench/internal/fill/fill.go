// Package fill asks a redirect server for every code of a codes file once,
// so a proxy's cache holds each of them before a measured run: a proxy
// that has served a link set for a while has its hot links cached, and
// nginx's `return 302`, the baseline, has nothing to miss. A wrk warm-up
// drawing Zipf ranks for a few seconds reaches only the head; the tail's
// first requests then miss during the measured run and go to the replica.
package fill

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
)

// Codes requests GET /{code} for every code (one a line) in codesFile
// from base (http://host:port) over conns keep-alive connections, and
// returns how many answers were not redirects (3xx). It does not follow
// the redirects.
func Codes(ctx context.Context, base, codesFile string, conns int) (notRedirect int64, err error) {
	data, err := os.ReadFile(codesFile)
	if err != nil {
		return 0, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return 0, err
	}
	all := strings.Fields(string(data))
	hc := &fasthttp.HostClient{Addr: u.Host, MaxConns: conns, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	var next, bad atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for range conns {
		g.Go(func() error {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetHost(u.Host)
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(all)) {
					return nil
				}
				req.SetRequestURI("http://" + u.Host + "/" + all[i])
				if err := hc.Do(req, resp); err != nil {
					return fmt.Errorf("fill %s: %w", all[i], err)
				}
				if c := resp.StatusCode(); c < 300 || c >= 400 {
					bad.Add(1)
				}
			}
			return ctx.Err()
		})
	}
	err = g.Wait()
	return bad.Load(), err
}
