package web

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"shortfleet/provisioning/rawhttp"
)

// rawServer serves e's handler on real TCP through HTTPServer, with the
// timeouts shortened so that the slow-client tests are quick.
func rawServer(t *testing.T, e *env) string {
	t.Helper()
	l := DefaultServerLimits()
	l.ReadHeaderTimeout, l.ReadTimeout, l.IdleTimeout = 500*time.Millisecond, 2*time.Second, 500*time.Millisecond
	srv := HTTPServer(e.h, l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestHostileHTTP sends what attackers and broken clients send to the
// primary, over real TCP with its own server settings: oversized headers
// and bodies get 431 and 413, smuggling attempts never get a hidden
// request answered, slow and idle clients are cut off, a page number
// past any offset is read as the last page, and the server goes on
// serving.
func TestHostileHTTP(t *testing.T) {
	e := setup(t)
	addr := rawServer(t, e)
	good := "GET /login HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n"
	// smuggled asks for the health of nothing: /api/openapi.json answers
	// 200, which no refused request does.
	smuggled := "GET /api/openapi.json HTTP/1.1\r\nHost: sho.rt\r\n\r\n"
	signup := "POST /api/signup HTTP/1.1\r\nHost: sho.rt\r\nContent-Type: application/json\r\n"
	bigJSON := `{"email":"` + strings.Repeat("a", 70<<10) + `"}`
	bigForm := "email=" + strings.Repeat("a", 1<<20)
	for _, tc := range []struct {
		name   string
		raw    string
		want   []int
		closed bool
	}{
		{"headers over 16 KiB", "GET /login HTTP/1.1\r\nHost: sho.rt\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", []int{431}, true},
		{"JSON body over 64 KiB", signup + "Content-Length: " + strconv.Itoa(len(bigJSON)) + "\r\nConnection: close\r\n\r\n" + bigJSON, []int{413}, true},
		{"form body over 64 KiB", "POST /login HTTP/1.1\r\nHost: sho.rt\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(bigForm)) + "\r\nConnection: close\r\n\r\n" + bigForm, []int{413}, true},
		{"Content-Length and Transfer-Encoding", signup + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{400}, true},
		{"Transfer-Encoding and Content-Length", signup + "Transfer-Encoding: chunked\r\nContent-Length: " + strconv.Itoa(len(smuggled)+5) + "\r\n\r\n0\r\n\r\n" + smuggled, []int{400}, true},
		{"two Content-Length", signup + "Content-Length: 0\r\nContent-Length: " + strconv.Itoa(len(smuggled)) + "\r\n\r\n" + smuggled, []int{400}, true},
		{"Transfer-Encoding: gzip, chunked", signup + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{501}, true},
		{"Transfer-Encoding: identity", signup + "Transfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n" + smuggled, []int{501}, true},
		{"space before the colon", signup + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{400}, true},
		{"two Host headers", "GET /login HTTP/1.1\r\nHost: sho.rt\r\nHost: evil.example\r\n\r\n", []int{400}, true},
		{"NUL in the path", "GET /a\x00b HTTP/1.1\r\nHost: sho.rt\r\n\r\n", []int{400}, true},
		// obs-fold: net/http joins the folded line to X-A, so it is no
		// Transfer-Encoding and nothing is read as a body: both pipelined
		// requests are answered.
		{"obs-fold", "GET /login HTTP/1.1\r\nHost: sho.rt\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n" + good, []int{200, 200}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, closed := rawhttp.Exchange(t, addr, tc.raw)
			if !slices.Equal(got, tc.want) || closed != tc.closed {
				t.Fatalf("answered %v (closed %v), want %v (closed %v)", got, closed, tc.want, tc.closed)
			}
			if got, _ := rawhttp.Exchange(t, addr, good); !slices.Equal(got, []int{200}) {
				t.Fatalf("after it, a good request was answered %v", got)
			}
		})
	}

	t.Run("page past any offset", func(t *testing.T) {
		b := e.browser()
		b.signup("pages@example.com")
		key := b.newKey("pages")
		for _, p := range []string{"9223372036854775807", "-9223372036854775808", "99999999999999999999"} {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/links?per_page=500&page="+p, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("page=%s: %d, want 200", p, resp.StatusCode)
			}
		}
		if resp, _ := b.get("/links?page=9223372036854775807"); resp.StatusCode != 200 {
			t.Errorf("the links page at page 2^63-1: %d", resp.StatusCode)
		}
	})

	t.Run("slowloris", func(t *testing.T) {
		if b := rawhttp.Slowloris(t, addr, "GET /login HTTP/1.1\r\nHost: sho.rt\r\n"); bytes.HasPrefix(b, []byte("HTTP/1.1 200")) {
			t.Fatalf("a slow client was answered %q", rawhttp.FirstLine(b))
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		rawhttp.IdleKeepAlive(t, addr, "GET /login HTTP/1.1\r\nHost: sho.rt\r\n\r\n", 200)
	})
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoSecretsLogged captures everything the app logs while accounts sign
// up (browser and API), log in with right and wrong passwords, get API
// keys (the keys page, the API's sign-up) and use them, and send invalid
// UTF-8: no
// password, session token, CSRF token or API key appears in it, and every
// line is valid UTF-8.
func TestNoSecretsLogged(t *testing.T) {
	var logs syncBuffer
	e := setupLog(t, &logs)
	const pw, wrongPW, apiPW = "correct horse battery staple", "wrong horse battery staple", "api password 0123456789"
	b := e.browser()
	b.signup("secrets@example.com")
	b.post("/links", "/logout", url.Values{})
	b.post("/login", "/login", url.Values{"email": {"secrets@example.com"}, "password": {wrongPW}})
	resp, _ := b.post("/login", "/login", url.Values{"email": {"secrets@example.com"}, "password": {"a good long password"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("log in: %d", resp.StatusCode)
	}
	csrf := b.csrf("/keys")
	webKey := b.newKey("web key")
	u, _ := url.Parse(e.srv.URL)
	var session, csrfSeed string
	for _, c := range b.c.Jar.Cookies(u) {
		switch c.Name {
		case "sf_session":
			session = c.Value
		case "sf_csrf":
			csrfSeed = c.Value
		}
	}
	// The API: sign-up with a password, a key created and used, a wrong key.
	body := `{"email":"api-secrets@example.com","password":"` + apiPW + `"}`
	resp2, err := e.srv.Client().Post(e.srv.URL+"/api/signup", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	apiKey := between(string(raw), `"api_key":"`, `"`)
	if apiKey == "" {
		t.Fatalf("API sign-up: %d %s", resp2.StatusCode, raw)
	}
	if st := e.apiCreate(apiKey); st != http.StatusCreated {
		t.Fatalf("API create: %d", st)
	}
	e.apiCreate("sf_" + strings.Repeat("x", 43))
	// A sign-up with a password too long and invalid UTF-8 everywhere.
	b2 := e.browser()
	b2.post("/signup", "/signup", url.Values{"email": {"bad\xff@example.com"}, "password": {"\xff\xfe" + strings.Repeat("p", 300)}})
	b2.post("/login", "/login", url.Values{"email": {"\xff@example.com"}, "password": {"\xff" + pw}})

	out := logs.String()
	for name, secret := range map[string]string{"password": "a good long password", "wrong password": wrongPW, "API password": apiPW,
		"typed password": pw, "web API key": webKey, "API key": apiKey, "session token": session, "CSRF seed": csrfSeed, "CSRF token": csrf} {
		if secret == "" {
			t.Fatalf("the test did not see the %s", name)
		}
		if strings.Contains(out, secret) {
			t.Errorf("the %s appears in the log", name)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if !utf8.ValidString(l) {
			t.Errorf("log line is not valid UTF-8: %q", l)
		}
	}
	t.Logf("%d log lines checked", strings.Count(out, "\n"))
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}
