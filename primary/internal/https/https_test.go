package https

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shortfleet/provisioning/tlscert"
)

// trustedLB is the balancer of these tests: a loopback address a client
// can dial from, so the server sees it as the socket's peer.
var trustedLB = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}

// app is what Require guards in these tests: /healthz and a page that
// echoes its method.
func app() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page "+r.Method) })
	return mux
}

// client is a client whose connections come from ip and that does not
// follow redirects.
func client(ip string, tr *http.Transport) *http.Client {
	if tr == nil {
		tr = &http.Transport{}
	} else {
		tr = tr.Clone()
	}
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, url string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestRequirePlainHTTP serves Require on a real plain-HTTP server, as the
// app runs behind a balancer that terminates TLS: strangers are
// redirected whatever X-Forwarded-Proto they send; the balancer's
// X-Forwarded-Proto: https is believed, and its answer carries HSTS.
func TestRequirePlainHTTP(t *testing.T) {
	srv := httptest.NewServer(Require(app(), trustedLB, ""))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	stranger, lb := client("127.0.0.1", nil), client("127.0.0.2", nil)
	for _, c := range []struct {
		name   string
		c      *http.Client
		method string
		path   string
		header []string
		want   int // 200: served; else a redirect to the same URL over HTTPS
	}{
		{"GET from a stranger", stranger, "GET", "/links?sort=clicks&x=%2F", nil, 301},
		{"HEAD from a stranger", stranger, "HEAD", "/links", nil, 301},
		{"POST from a stranger", stranger, "POST", "/api/links", nil, 308},
		{"PUT from a stranger", stranger, "PUT", "/x", nil, 308},
		{"DELETE from a stranger", stranger, "DELETE", "/x", nil, 308},
		{"a stranger's X-Forwarded-Proto is not believed", stranger, "GET", "/", []string{"X-Forwarded-Proto", "https"}, 301},
		{"nor for a POST", stranger, "POST", "/login", []string{"X-Forwarded-Proto", "https"}, 308},
		{"GET /healthz", stranger, "GET", "/healthz", nil, 200},
		{"HEAD /healthz", stranger, "HEAD", "/healthz", nil, 200},
		{"POST /healthz is no health check", stranger, "POST", "/healthz", nil, 308},
		{"below /healthz", stranger, "GET", "/healthz/x", nil, 301},
		{"the balancer, https", lb, "GET", "/links", []string{"X-Forwarded-Proto", "https"}, 200},
		{"the balancer, HTTPS", lb, "POST", "/links", []string{"X-Forwarded-Proto", "HTTPS"}, 200},
		{"the balancer, /healthz over https", lb, "GET", "/healthz", []string{"X-Forwarded-Proto", "https"}, 200},
		{"the balancer, http", lb, "GET", "/links", []string{"X-Forwarded-Proto", "http"}, 301},
		{"the balancer, http, POST", lb, "POST", "/links", []string{"X-Forwarded-Proto", "http"}, 308},
		{"the balancer, no header", lb, "GET", "/", nil, 301},
		{"the balancer, something else", lb, "GET", "/", []string{"X-Forwarded-Proto", "wss"}, 301},
		{"the balancer, a list", lb, "GET", "/", []string{"X-Forwarded-Proto", "https, http"}, 301},
		{"the balancer, two lines", lb, "GET", "/", []string{"X-Forwarded-Proto", "https", "X-Forwarded-Proto", "https"}, 301},
		{"the balancer's /healthz over http", lb, "GET", "/healthz", []string{"X-Forwarded-Proto", "http"}, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := do(t, c.c, c.method, srv.URL+c.path, c.header...)
			hsts := resp.Header.Get("Strict-Transport-Security")
			if resp.StatusCode != c.want {
				t.Fatalf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
			}
			secure := len(c.header) == 2 && c.c == lb && strings.EqualFold(c.header[1], "https")
			if want := map[bool]string{true: HSTS}[secure]; hsts != want {
				t.Fatalf("Strict-Transport-Security %q, want %q", hsts, want)
			}
			if c.want == 200 {
				return
			}
			if loc := resp.Header.Get("Location"); loc != "https://"+host+c.path {
				t.Fatalf("Location %q, want https://%s%s", loc, host, c.path)
			}
		})
	}
}

// TestRequireHost: the redirect keeps the Host the client asked for, and
// a request with none that could be trusted is refused rather than sent
// somewhere else.
func TestRequireHost(t *testing.T) {
	srv := httptest.NewServer(Require(app(), trustedLB, ""))
	defer srv.Close()
	for _, c := range []struct {
		req, status, location string
	}{
		{"GET /a?b=c HTTP/1.1\r\nHost: app.example:8443\r\n\r\n", "301", "https://app.example:8443/a?b=c"},
		{"GET /a HTTP/1.1\r\nHost: [2001:db8::1]:8000\r\n\r\n", "301", "https://[2001:db8::1]:8000/a"},
		{"GET http://app.example/a?b HTTP/1.1\r\nHost: other.example\r\n\r\n", "301", "https://app.example/a?b"},
		{"POST //evil.example/x HTTP/1.1\r\nHost: app.example\r\nContent-Length: 0\r\n\r\n", "308", "https://app.example//evil.example/x"},
		{"GET /a HTTP/1.1\r\nHost: [fe80::1%25eth0]:8000\r\n\r\n", "301", "https://[fe80::1%25eth0]:8000/a"},
		{"GET /a HTTP/1.0\r\n\r\n", "400", ""},
		{"GET /a HTTP/1.1\r\nHost: app%zz.example\r\n\r\n", "400", ""}, // net/http lets % through, for IPv6 zones
		{"GET /a HTTP/1.1\r\nHost: [2001:db8::1\r\n\r\n", "400", ""},
	} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(c.req))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatalf("%q: %v", c.req, err)
		}
		if got := resp.Status[:3]; got != c.status || resp.Header.Get("Location") != c.location {
			t.Errorf("%q: %s Location %q, want %s %q", c.req, got, resp.Header.Get("Location"), c.status, c.location)
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to PEM files,
// issued by a CA of its own, and returns their names and the CA's
// certificate, for a client to trust.
func selfSigned(t *testing.T) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	ca, err := tlscert.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := ca.IssuePair(certFile, keyFile, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, ca.Cert
}

// TestRequireOwnTLS: served over TLS of its own (the certificate loaded
// by TLSConfig, HTTP/2 negotiated as ServeTLS does), a request is HTTPS
// whoever sends it and whatever X-Forwarded-Proto says: no redirect, HSTS.
func TestRequireOwnTLS(t *testing.T) {
	certFile, keyFile, cert := selfSigned(t)
	cfg, err := TLSConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(Require(app(), trustedLB, ""))
	srv.TLS = cfg
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	for _, h := range [][]string{nil, {"X-Forwarded-Proto", "http"}} {
		for _, m := range []string{"GET", "POST"} {
			resp := do(t, client("127.0.0.1", tr), m, srv.URL+"/links", h...)
			if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != HSTS || resp.ProtoMajor != 2 {
				t.Fatalf("%s over TLS, %q: %s %d, Strict-Transport-Security %q", m, h, resp.Proto, resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
			}
		}
	}
}

// TestTLSConfig: neither file is plain HTTP; one without the other, a
// missing file, or a key that is not the certificate's is refused, with
// the cause kept.
func TestTLSConfig(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	otherCert, otherKey, _ := selfSigned(t)
	if cfg, err := TLSConfig("", ""); cfg != nil || err != nil {
		t.Fatalf("no files: %v, %v; want plain HTTP", cfg, err)
	}
	if cfg, err := TLSConfig(certFile, keyFile); err != nil || len(cfg.Certificates) != 1 {
		t.Fatalf("a good pair: %v", err)
	}
	for _, c := range []struct{ name, cert, key string }{
		{"certificate only", certFile, ""},
		{"key only", "", keyFile},
		{"missing certificate", filepath.Join(t.TempDir(), "none.pem"), keyFile},
		{"someone else's key", certFile, otherKey},
		{"the key as certificate", keyFile, otherCert},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := TLSConfig(c.cert, c.key)
			if err == nil || cfg != nil {
				t.Fatalf("%v, %v; want refused", cfg, err)
			}
			if strings.HasPrefix(c.name, "missing") && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%v does not wrap the cause", err)
			}
			t.Log(err)
		})
	}
}

// TestRequireOrigin: with the app's public origin (-app-base), a plain
// request goes there, whatever port it came in on: in the local fleet
// plain HTTP is :8080 and HTTPS :8443, so https://Host would be a port
// that speaks no TLS.
func TestRequireOrigin(t *testing.T) {
	origin, err := ParseOrigin("https://127.0.0.5:8443/")
	if err != nil || origin != "https://127.0.0.5:8443" {
		t.Fatalf("ParseOrigin: %q, %v", origin, err)
	}
	srv := httptest.NewServer(Require(app(), trustedLB, origin))
	defer srv.Close()
	resp := do(t, client("127.0.0.1", nil), "GET", srv.URL+"/links?x=1")
	if loc := resp.Header.Get("Location"); resp.StatusCode != 301 || loc != origin+"/links?x=1" {
		t.Fatalf("%d to %q, want 301 to %s/links?x=1", resp.StatusCode, loc, origin)
	}
	for _, bad := range []string{"http://app.example.com", "https://", "https://app.example.com/path", "https://u@app.example.com", "app.example.com", "https://app.example.com/?q"} {
		if _, err := ParseOrigin(bad); err == nil {
			t.Errorf("ParseOrigin(%q) accepted", bad)
		}
	}
	if o, err := ParseOrigin(""); o != "" || err != nil {
		t.Errorf("ParseOrigin(\"\") = %q, %v", o, err)
	}
}
