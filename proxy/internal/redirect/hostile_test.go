package redirect

import (
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"shortfleet/provisioning/rawhttp"
)

// hostileServer serves the handler on real TCP with the proxy's own
// fasthttp settings (HTTPServer), the timeouts shortened so that the slow
// client tests are quick.
func hostileServer(t *testing.T, e *env) string {
	t.Helper()
	l := DefaultLimits()
	l.ReadTimeout, l.IdleTimeout = 500*time.Millisecond, 500*time.Millisecond
	fs := e.srv.HTTPServer(l, quiet)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go fs.Serve(ln)
	t.Cleanup(func() { fs.Shutdown() })
	return ln.Addr().String()
}

// TestHostileHTTP sends what attackers and broken clients send, over real
// TCP to the proxy's own server settings: oversized headers and bodies,
// request smuggling attempts, slow clients, invalid UTF-8 in every field
// the access log keeps. Each is refused or handled with a clear status,
// a smuggled request is never answered, and the server goes on serving.
func TestHostileHTTP(t *testing.T) {
	e := setup(t, setupOpts{})
	addr := hostileServer(t, e)
	code := e.code(e.ids["302"])
	good := "GET /" + code + " HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n"
	// smuggled is a request hidden in a body: if it were ever answered, a
	// 302 would show it.
	smuggled := "GET /" + code + " HTTP/1.1\r\nHost: sho.rt\r\n\r\n"
	cl := func(n int) string { return "Content-Length: " + itoa(n) + "\r\n" }
	for _, tc := range []struct {
		name string
		raw  string
		want []int
	}{
		{"headers over 8 KiB", "GET /" + code + " HTTP/1.1\r\nHost: sho.rt\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", []int{431}},
		{"body over 4 KiB", "POST /" + code + " HTTP/1.1\r\nHost: sho.rt\r\n" + cl(100_000) + "\r\n" + strings.Repeat("a", 100_000), []int{413}},
		{"Content-Length then Transfer-Encoding", "POST /x HTTP/1.1\r\nHost: sho.rt\r\n" + cl(5) + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"Transfer-Encoding then Content-Length, GET", "GET /x HTTP/1.1\r\nHost: sho.rt\r\nTransfer-Encoding: chunked\r\n" + cl(len(smuggled)+5) + "\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"Transfer-Encoding: CHUNKED with Content-Length", "POST /x HTTP/1.1\r\nHost: sho.rt\r\nTransfer-Encoding: CHUNKED\r\n" + cl(len(smuggled)+5) + "\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"Transfer-Encoding: identity with Content-Length", "POST /x HTTP/1.1\r\nHost: sho.rt\r\nTransfer-Encoding: identity\r\n" + cl(0) + "\r\n" + smuggled, []int{400}},
		{"two Content-Length", "POST /x HTTP/1.1\r\nHost: sho.rt\r\n" + cl(0) + cl(len(smuggled)) + "\r\n" + smuggled, []int{400}},
		{"Content-Length list", "POST /x HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 0, " + itoa(len(smuggled)) + "\r\n\r\n" + smuggled, []int{400}},
		{"Transfer-Encoding: gzip, chunked", "POST /x HTTP/1.1\r\nHost: sho.rt\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"space before the colon", "POST /x HTTP/1.1\r\nHost: sho.rt\r\nTransfer-Encoding : chunked\r\n" + cl(len(smuggled)+5) + "\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"chunked in HTTP/1.0", "POST /x HTTP/1.0\r\nHost: sho.rt\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"negative Content-Length", "POST /x HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: -1\r\n\r\n" + smuggled, []int{400}},
		{"two Host headers", "GET /" + code + " HTTP/1.1\r\nHost: sho.rt\r\nHost: evil.example\r\n\r\n", []int{400}},
		{"NUL in the path", "GET /a\x00b HTTP/1.1\r\nHost: sho.rt\r\n\r\n", []int{400}},
		{"huge chunk size", "POST /x HTTP/1.1\r\nHost: sho.rt\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", []int{400}},
		// obs-fold: the folded line belongs to X-A (replaced by a space,
		// as RFC 9112 allows), so it is no Transfer-Encoding and nothing
		// is read as a body: both pipelined requests are answered.
		{"obs-fold", "GET /" + code + " HTTP/1.1\r\nHost: sho.rt\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n" + good, []int{302, 302}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, closed := rawhttp.Exchange(t, addr, tc.raw)
			if !slices.Equal(got, tc.want) || !closed {
				t.Fatalf("answered %v (closed %v), want %v and the connection closed", got, closed, tc.want)
			}
			if got, _ := rawhttp.Exchange(t, addr, good); !slices.Equal(got, []int{302}) {
				t.Fatalf("after it, a good request was answered %v", got)
			}
		})
	}
	st := e.srv.Statuses()
	if st[431] == 0 || st[413] == 0 || st[400] == 0 {
		t.Errorf("refusals not counted: %v", st)
	}

	t.Run("slowloris", func(t *testing.T) {
		// One header line every 100 ms, for ever: the server must cut it
		// off at ReadTimeout (500 ms here).
		b := rawhttp.Slowloris(t, addr, "GET /"+code+" HTTP/1.1\r\nHost: sho.rt\r\n")
		if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408") {
			t.Fatalf("a slow client was answered %q, want 408 or nothing", rawhttp.FirstLine(b))
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) { rawhttp.IdleKeepAlive(t, addr, smuggled, 302) })

	// Invalid UTF-8 in every field the log keeps: the request is answered,
	// the record is written with the bytes replaced by U+FFFD (logfmt's
	// rule, documented in logfmt/doc.go), and every segment stays readable
	// by the log's reader with valid UTF-8 in every string column.
	t.Run("invalid UTF-8 logged", func(t *testing.T) {
		bad := "\xff\xfe\xc3"
		raw := "GET /" + code + bad + "?q=" + bad + " HTTP/1.1\r\nHost: sho" + bad + ".rt\r\nUser-Agent: UA" + bad +
			"\r\nReferer: https://r.example/" + bad + "\r\nAccept-Language: fr" + bad + "\r\nX-Name" + bad + ": v" + bad +
			"\r\nX-Forwarded-For: " + bad + "\r\nConnection: close\r\n\r\n"
		got, _ := rawhttp.Exchange(t, addr, raw)
		if len(got) != 1 || (got[0] != 404 && got[0] != 400) {
			t.Fatalf("answered %v", got)
		}
		got, _ = rawhttp.Exchange(t, addr, "GET /"+code+"?q="+bad+" HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: "+bad+"\r\nReferer: "+bad+
			"\r\nAccept-Language: "+bad+"\r\nX-V: "+bad+"\r\nConnection: close\r\n\r\n")
		if !slices.Equal(got, []int{302}) {
			t.Fatalf("answered %v, want 302", got)
		}
		rows := e.records()
		replaced := 0
		for _, r := range rows {
			fields := []string{r.ClientAddr, r.Method, r.Host, r.Path, r.Query, r.Proto, r.UserAgent, r.Referrer, r.AcceptLanguage, r.Cache, r.Proxy}
			for _, h := range r.Headers {
				fields = append(fields, h[0], h[1])
			}
			for _, f := range fields {
				if !utf8.ValidString(f) {
					t.Fatalf("record holds invalid UTF-8 %q: %+v", f, r)
				}
				if strings.Contains(f, "\uFFFD") {
					replaced++
				}
			}
		}
		if replaced < 5 {
			t.Fatalf("%d fields show U+FFFD, want the invalid bytes replaced in at least 5", replaced)
		}
		if _, err := os.Stat(e.logDir); err != nil {
			t.Fatal(err)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
