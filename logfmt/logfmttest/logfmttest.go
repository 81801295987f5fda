// Package logfmttest makes realistic access log records for tests and
// benchmarks: links drawn with Zipf skew, a mix of browsers and crawlers,
// clients from many networks, referrers, languages and the headers real
// browsers send.
package logfmttest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"shortfleet/logfmt"
)

// UserAgents are real browser and crawler user agents; the last four are
// crawlers.
var UserAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
	"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
	"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
}

var languages = []string{"en-US,en;q=0.9", "de-CH,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9", "ja-JP,ja;q=0.9", "es-ES,es;q=0.9",
	"pt-BR,pt;q=0.9", "", "zh-CN,zh;q=0.9", "en-GB,en;q=0.8", "nl-NL,nl;q=0.9", "it-IT,it;q=0.9", "ko-KR,ko;q=0.9", "pl-PL,pl;q=0.9"}

// Gen makes records. It is not safe for concurrent use.
type Gen struct {
	rng       *rand.Rand
	zipf      *rand.Zipf
	referrers []string
	start     int64
	span      int64
	buf       []byte
}

// New returns a generator of records for links 1..links, spread over the
// span from start.
func New(seed uint64, links int64, start time.Time, span time.Duration) *Gen {
	rng := rand.New(rand.NewPCG(seed, 7))
	g := &Gen{rng: rng, zipf: rand.NewZipf(rng, 1.1, 4, uint64(links-1)), start: start.UnixNano(), span: int64(span)}
	g.referrers = []string{""}
	for i := range 200 {
		g.referrers = append(g.referrers, fmt.Sprintf("https://site%d.example/article/%d", i, i*7))
	}
	g.referrers = append(g.referrers, "https://www.google.com/", "https://t.co/x", "https://news.ycombinator.com/item?id=4", "android-app://com.slack/")
	return g
}

// Next fills r with the next record, reusing r's buffers. The i-th of n
// records is timed i/n through the span.
func (g *Gen) Next(r *logfmt.Record, i, n int) {
	r.Reset()
	rng := g.rng
	r.Time = g.start + g.span*int64(i)/int64(max(n, 1))
	r.Method, r.Host, r.Proto = []byte("GET"), []byte("sho.rt"), []byte("HTTP/1.1")
	r.LinkID = int64(g.zipf.Uint64()) + 1
	r.Status = 302
	r.Cache = logfmt.CacheHit
	switch x := rng.IntN(100); {
	case x < 5:
		r.LinkID, r.Status, r.Cache = 0, 404, logfmt.CacheMiss
	case x < 6:
		r.Status = 410
	case x < 8:
		r.Status, r.Cache = 301, logfmt.CacheReplica
	}
	g.buf = fmt.Appendf(g.buf[:0], "%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
	r.ClientAddr = append(r.ClientAddr[:0], g.buf...)
	r.ClientPort = uint16(1024 + rng.IntN(60000))
	r.Path = fmt.Appendf(r.Path[:0], "/%07x", r.LinkID)
	r.LatencyNS = int64(20_000 + rng.IntN(200_000))
	r.ReplicaLagNS = int64(rng.IntN(5_000_000))
	ua := UserAgents[rng.IntN(len(UserAgents)-4)]
	if rng.IntN(100) < 15 {
		ua = UserAgents[len(UserAgents)-4+rng.IntN(4)]
	}
	r.UserAgent = []byte(ua)
	r.Referrer = []byte(g.referrers[rng.IntN(len(g.referrers))])
	r.AcceptLanguage = []byte(languages[rng.IntN(len(languages))])
	r.Headers = append(r.Headers[:0],
		logfmt.Header{Name: []byte("Accept"), Value: []byte("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")},
		logfmt.Header{Name: []byte("Accept-Encoding"), Value: []byte("gzip, deflate, br, zstd")},
		logfmt.Header{Name: []byte("Sec-Fetch-Mode"), Value: []byte("navigate")},
		logfmt.Header{Name: []byte("Upgrade-Insecure-Requests"), Value: []byte("1")},
	)
}
