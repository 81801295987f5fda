package fixedrate

import (
	"crypto/tls"
	"io"
	"net/http"
	"time"
)

// NewClient is a browser-like client for the open-loop runs: it keeps its
// connections, at most conns to one origin (opened as the load needs them,
// in a run's warm-up at the benchmarks' rates), and follows no redirect
// (the redirect is the answer measured). Without the bound a request that
// finds every connection busy opens one more, and over HTTPS at 6,000/s
// the handshakes fell behind the rate and the run never recovered
// (bench/cmd/latbench).
func NewClient(tlsConf *tls.Config, conns int) *http.Client {
	return &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{TLSClientConfig: tlsConf, MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns,
			IdleConnTimeout: time.Minute, DisableCompression: true},
		Timeout: 10 * time.Second,
	}
}

// The headers of real visits, as bench/wrk/redirects.lua sends them.
var (
	agents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
		"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
		"curl/8.5.0",
	}
	referrers = []string{
		"https://www.google.com/", "https://t.co/", "https://news.ycombinator.com/",
		"https://www.facebook.com/", "https://www.reddit.com/r/golang/", "",
		"https://mail.google.com/", "https://www.linkedin.com/feed/", "", "https://duckduckgo.com/",
	}
	languages = []string{
		"en-US,en;q=0.9", "de-CH,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9", "ja-JP,ja;q=0.9,en;q=0.5",
		"es-ES,es;q=0.9", "pt-BR,pt;q=0.9,en;q=0.7", "", "zh-CN,zh;q=0.9", "en-GB,en;q=0.8", "nl-NL,nl;q=0.9",
	}
)

// Redirect asks base/code with the headers of the i-th visit (user agent,
// Accept-Language and Referer varying as in bench/wrk/redirects.lua) and
// reports whether the answer was a redirect.
func Redirect(client *http.Client, base, code string, i int) bool {
	req, err := http.NewRequest(http.MethodGet, base+"/"+code, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", agents[i%len(agents)])
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	if l := languages[i/7%len(languages)]; l != "" {
		req.Header.Set("Accept-Language", l)
	}
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	if ref := referrers[i/3%len(referrers)]; ref != "" {
		req.Header.Set("Referer", ref)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode/100 == 3
}
