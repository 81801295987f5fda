package localfleet_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"shortfleet/logfmt"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/tlscert"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address addr (a "host" of its own, so the address a proxy logs can only
// be this client's), trusting the fleet's CA, not following redirects, and
// noting each request's local port in *port.
func clientFrom(addr string, f *localfleet.Fleet) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}).DialContext
	tr.TLSClientConfig = &tls.Config{RootCAs: f.CA().Pool()}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get sends GET url with extra headers and returns the answer and the
// client's port of the connection it went over.
func get(t *testing.T, c *http.Client, url string, header map[string]string) (*http.Response, int) {
	t.Helper()
	var port int
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		port = i.Conn.LocalAddr().(*net.TCPAddr).Port
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, port
}

// TestBalancerPath is the production path on one machine: HTTPS with
// HTTP/2 at HAProxy for short links and the app, plain HTTP for short
// links, reused connections to the proxies with the client's own address
// and port in every log record whatever headers it sends, and a proxy that
// dies with requests on its connections costing the clients nothing.
func TestBalancerPath(t *testing.T) {
	if !localfleet.HAProxyInstalled() {
		t.Fatal("haproxy is not installed: make test installs it (provisioning/deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := startFleetWith(t, localfleet.Config{Proxies: 2, ProxyArgs: []string{"-flush-interval", "20ms"}})
	_, links := signupWithLinks(t, f.PrimaryURL(), "path@example.com", 20, "https://example.com/path/%d")
	l := links[0]
	subnet := f.PrimaryHost()[:strings.LastIndexByte(f.PrimaryHost(), '.')]
	visitor, stranger := subnet+".77", subnet+".78"
	c := clientFrom(visitor, f)

	// 1. HTTPS with HTTP/2 where the client offers it, HTTP/1.1 in plain.
	resp, _ := get(t, c, f.ShortBase()+"/"+l.Code+"?case=h2", nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != l.Target || resp.Proto != "HTTP/2.0" {
		t.Fatalf("short link over HTTPS: %d %s %q", resp.StatusCode, resp.Proto, resp.Header.Get("Location"))
	}
	resp, _ = get(t, c, f.BalancerURL()+"/"+l.Code+"?case=plain", nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != l.Target || resp.Proto != "HTTP/1.1" {
		t.Fatalf("short link over HTTP: %d %s %q", resp.StatusCode, resp.Proto, resp.Header.Get("Location"))
	}
	resp, _ = get(t, c, f.PrimaryURL()+"/login", nil)
	if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/2.0" || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("the app over HTTPS: %d %s, HSTS %q", resp.StatusCode, resp.Proto, resp.Header.Get("Strict-Transport-Security"))
	}
	// The app in plain HTTP, through the balancer's app address: sent to
	// HTTPS, with no HSTS (it means nothing over plain HTTP).
	plainApp := "http://" + net.JoinHostPort(subnet+".5", strconv.Itoa(localfleet.PortBalancer))
	resp, _ = get(t, c, plainApp+"/login?next=%2Flinks", nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || loc != f.PrimaryURL()+"/login?next=%2Flinks" {
		t.Fatalf("the app over HTTP: %d to %q, want 301 to %s/login?next=%%2Flinks", resp.StatusCode, loc, f.PrimaryURL())
	}
	// A client that does not trust the fleet's CA is refused the handshake.
	strangerCA, err := tlscert.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	distrust := clientFrom(visitor, f)
	distrust.Transport.(*http.Transport).TLSClientConfig.RootCAs = strangerCA.Pool()
	if _, err := distrust.Get(f.ShortBase() + "/" + l.Code); !errors.As(err, new(*tls.CertificateVerificationError)) && !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Fatalf("a client trusting another CA: %v, want a certificate error", err)
	}

	// 2. The client's address and port in the log, exact: headers a client
	// sends the balancer are replaced, and a client that names an address
	// straight to a proxy is not believed.
	spoof := map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Client-Port": "7", "X-Forwarded-Proto": "https"}
	_, viaLB := get(t, c, f.ShortBase()+"/"+l.Code+"?case=spoof-lb", spoof)
	_, viaPlain := get(t, c, f.BalancerURL()+"/"+l.Code+"?case=spoof-plain", spoof)
	direct := clientFrom(stranger, f)
	_, viaDirect := get(t, direct, f.RedirectURLs()[0]+"/"+l.Code+"?case=spoof-direct", spoof)
	want := map[string]struct {
		addr string
		port int
	}{
		"case=spoof-lb": {visitor, viaLB}, "case=spoof-plain": {visitor, viaPlain}, "case=spoof-direct": {stranger, viaDirect},
	}
	// Stopping the proxies seals their logs.
	for _, p := range f.Proxies {
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	found := map[string]bool{}
	for i := range f.Proxies {
		entries, err := logfmt.ReadManifest(f.ProxyLogDir(i))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(f.ProxyLogDir(i), e.Name))
			if err != nil {
				t.Fatal(err)
			}
			rows, err := logfmt.ReadAll(strings.NewReader(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				w, ok := want[r.Query]
				if !ok {
					if r.ClientAddr != visitor {
						t.Errorf("%s?%s logged from %s, want %s", r.Path, r.Query, r.ClientAddr, visitor)
					}
					continue
				}
				found[r.Query] = true
				if r.ClientAddr != w.addr || int(r.ClientPort) != w.port {
					t.Errorf("%s?%s logged from %s:%d, want %s:%d", r.Path, r.Query, r.ClientAddr, r.ClientPort, w.addr, w.port)
				}
			}
		}
	}
	if len(found) != len(want) {
		t.Fatalf("logged %v of %d spoofing requests", found, len(want))
	}
	for _, p := range f.Proxies {
		if err := p.Start(ctx, "redirect", "admin"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.WaitBalanced(ctx, 2); err != nil {
		t.Fatal(err)
	}

	// 3. A proxy that dies with requests on its reused connections: frozen
	// first, so requests wait on it, then killed. HAProxy sends them again
	// to the other proxy, and the clients see only redirects.
	cc := startClients(f.ShortBase(), links, 4)
	cc.waitMore(t, ctx, 300)
	p := f.Proxies[1].Process()
	retried := func() int {
		n, err := serverStat(f, "proxies", localfleet.ProxyID(1), 15)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := serverStat(f, "proxies", localfleet.ProxyID(1), 16)
		return n + m
	}
	before := retried()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, func() bool {
		n, err := serverStat(f, "proxies", localfleet.ProxyID(1), 4) // scur: requests on it now
		return err == nil && n > 0
	})
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, func() bool { return p.Restarts() == 1 })
	if err := f.WaitBalanced(ctx, 2); err != nil {
		t.Fatal(err)
	}
	cc.waitMore(t, ctx, 300)
	cc.end(t, "proxy-02 frozen with requests on it, then killed")
	if after := retried(); after <= before {
		t.Fatalf("HAProxy retried or redispatched %d requests of proxy-02, want some: none was under way when it died", after-before)
	} else {
		t.Logf("HAProxy sent %d requests again that proxy-02 did not answer", after-before)
	}
}

// serverStat reads one numeric field (by index of HAProxy's stats CSV:
// 4 scur, 15 wretr, 16 wredis) of a server of a backend.
func serverStat(f *localfleet.Fleet, backend, server string, field int) (int, error) {
	resp, err := http.Get(f.BalancerStatsURL() + "/stats;csv")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ",")
		if len(fs) > field && fs[0] == backend && fs[1] == server {
			if fs[field] == "" {
				return 0, nil
			}
			return strconv.Atoi(fs[field])
		}
	}
	return 0, errors.New("no such server in the stats")
}

// TestNoProxyReadyStillRedirects: when no proxy is ready, because every
// replica lags past -max-lag (replay paused on each while the primary
// writes: what a primary down with no standby fit to promote leaves),
// HAProxy sends short links to the live proxies anyway (backend
// proxies_live), which answer from their caches and replicas, instead of
// answering 503 for every link; once the replicas catch up, the checked
// backend takes them again. Without proxies_live the redirect through the
// balancer is a 503.
func TestNoProxyReadyStillRedirects(t *testing.T) {
	if !localfleet.HAProxyInstalled() {
		t.Fatal("haproxy is not installed: make test installs it (provisioning/deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := startFleetWith(t, localfleet.Config{Proxies: 2, ProxyArgs: []string{"-max-lag", "1s"}})
	_, links := signupWithLinks(t, f.PrimaryURL(), "lagging@example.com", 1, "https://example.com/lagging/%d")
	l := links[0]
	if err := f.WaitReplicas(ctx); err != nil {
		t.Fatal(err)
	}
	subnet := f.PrimaryHost()[:strings.LastIndexByte(f.PrimaryHost(), '.')]
	c := clientFrom(subnet+".77", f)
	redirected := func(what string) {
		t.Helper()
		for range 4 { // round robin: both proxies
			resp, _ := get(t, c, f.BalancerURL()+"/"+l.Code, nil)
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != l.Target {
				t.Fatalf("%s: GET /%s through the balancer: %d to %q, want 302 to %s", what, l.Code, resp.StatusCode, resp.Header.Get("Location"), l.Target)
			}
		}
	}
	redirected("all ready")
	ready := func(want bool) {
		t.Helper()
		waitUntil(t, ctx, func() bool {
			for _, u := range f.AdminURLs() {
				resp, err := http.Get(u + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				if (resp.StatusCode == http.StatusOK) != want {
					return false
				}
			}
			// HAProxy's own view: every server of the checked backend UP,
			// or every one DOWN ("UP 1/2" is still in rotation).
			return slices.Equal(proxyStates(t, f), slices.Repeat([]string{map[bool]string{true: "UP", false: "DOWN"}[want]}, len(f.Proxies)))
		})
	}

	// Patroni resumes a paused replay at its next loop unless the cluster
	// is in maintenance mode.
	if _, err := f.Patronictl(ctx, "pause", "--wait"); err != nil {
		t.Fatal(err)
	}
	exec := func(c interface {
		Connect(context.Context, string) (*pgx.Conn, error)
	}, stmt string) {
		t.Helper()
		conn, err := c.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	for _, r := range f.Replicas {
		exec(r, "SELECT pg_wal_replay_pause()")
	}
	exec(f.Primary, "CREATE TABLE lag_probe (at timestamptz)")
	exec(f.Primary, "INSERT INTO lag_probe VALUES (now())")
	ready(false)
	redirected("no proxy ready")

	for _, r := range f.Replicas {
		exec(r, "SELECT pg_wal_replay_resume()")
	}
	if _, err := f.Patronictl(ctx, "resume", "--wait"); err != nil {
		t.Fatal(err)
	}
	ready(true)
	redirected("ready again")
}

// proxyStates are the statuses HAProxy's stats give the servers of its
// backend proxies.
func proxyStates(t *testing.T, f *localfleet.Fleet) []string {
	t.Helper()
	resp, err := http.Get(f.BalancerStatsURL() + "/stats;csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	servers, err := localfleet.ParseServerStates(resp.Body, "proxies")
	if err != nil {
		t.Fatal(err)
	}
	states := make([]string, len(servers))
	for i, s := range servers {
		states[i] = s.Status
	}
	return states
}
