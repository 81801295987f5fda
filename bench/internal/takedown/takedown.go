// Package takedown measures how long a disabled link keeps redirecting:
// from the UPDATE committing on the primary to every proxy answering 410.
package takedown

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/sql/codes"
)

// Measure disables the given links (codes each proxy can redirect) one by
// one and returns, sorted, how long each took to be answered 410 by every
// proxy (redirect origins). Each proxy is asked for the link first, so it
// is cached everywhere when it is disabled.
func Measure(ctx context.Context, dsn string, proxies []string, linkCodes []string, codec *codes.Codec) ([]time.Duration, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 5 * time.Second}
	status := func(u string) int {
		resp, err := client.Get(u)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var out []time.Duration
	for _, code := range linkCodes {
		id, err := codec.DecodeString(code)
		if err != nil {
			return nil, err
		}
		for _, p := range proxies {
			if s := status(p + "/" + code); s != 302 {
				return nil, fmt.Errorf("%s/%s answers %d before the takedown", p, code, s)
			}
		}
		if _, err := conn.Exec(ctx, `UPDATE links SET disabled = true WHERE id = $1`, id); err != nil {
			return nil, err
		}
		start := time.Now()
		for _, p := range proxies {
			for status(p+"/"+code) != 410 {
				if time.Since(start) > 30*time.Second {
					return nil, fmt.Errorf("%s still redirects %s 30 s after the takedown", p, code)
				}
				time.Sleep(time.Millisecond)
			}
		}
		out = append(out, time.Since(start))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}
