package balancer

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shortfleet/bench/internal/baseline"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/settings"
	"shortfleet/provisioning/tlscert"
)

func servers(host string, n int) []settings.Server {
	var s []settings.Server
	for i := range n {
		s = append(s, settings.Server{Name: fmt.Sprintf("b%02d", i+1), Addr: fmt.Sprintf("%s.%d", host, 101+i), Port: 8080, CheckPort: 8080})
	}
	return s
}

// certFile issues a certificate for host from a CA made in dir.
func certFile(t *testing.T, dir, host string) string {
	ca, err := tlscert.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "balancer.pem")
	if err := ca.Issue(path, []string{host}, 3600e9); err != nil {
		t.Fatal(err)
	}
	return path
}

// changed lists the lines of a missing from b and of b missing from a.
func changed(a, b string) (gone, added []string) {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for _, l := range al {
		if !slices.Contains(bl, l) {
			gone = append(gone, strings.TrimSpace(l))
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			added = append(added, strings.TrimSpace(l))
		}
	}
	return gone, added
}

// TestBefore renders today's configuration and the one issue 19
// replaced from the shared settings, checks that they differ in exactly
// the PROXY protocol, reuse and header lines, and that haproxy accepts
// both.
func TestBefore(t *testing.T) {
	dir := t.TempDir()
	s := Setup{Host: "127.0.0.4", Source: "127.0.0.4", CertFile: certFile(t, dir, "127.0.0.4"), Servers: servers("127.0.0", 3)}
	after, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	s.Before = true
	before, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	gone, added := changed(after, before)
	h := settings.LoadHAProxy()
	defaultServer := ""
	for _, l := range strings.Split(after, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "default-server ") {
			defaultServer = strings.TrimSpace(l)
		}
	}
	wantGone := []string{
		"http-reuse " + h.HTTPReuse,
		"option forwardfor",
		"http-request set-header X-Forwarded-Proto https if { ssl_fc }",
		"http-request set-header X-Forwarded-Proto http unless { ssl_fc }",
		"http-request set-header X-Client-Port %[src_port]",
		defaultServer, defaultServer, // backends proxies and proxies_live
	}
	wantAdded := []string{"http-reuse safe", defaultServer + " send-proxy-v2", defaultServer + " send-proxy-v2"}
	slices.Sort(gone)
	slices.Sort(wantGone)
	if !slices.Equal(gone, wantGone) || !slices.Equal(added, wantAdded) {
		t.Fatalf("before drops %q and adds %q; want %q and %q", gone, added, wantGone, wantAdded)
	}
	for name, cfg := range map[string]string{"after": after, "before": before} {
		path := filepath.Join(dir, name+".cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("haproxy", "-c", "-q", "-f", path).CombinedOutput(); err != nil {
			t.Errorf("haproxy -c refuses the %s configuration: %v: %s", name, err, out)
		}
	}
}

// TestBeforeRefuses: a configuration without the lines Before edits is
// an error, not a "before" equal to "after".
func TestBeforeRefuses(t *testing.T) {
	after, err := Render(Setup{Host: "127.0.0.4", CertFile: "/x.pem", Servers: servers("127.0.0", 2)})
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]string{
		"no http-reuse":      strings.Replace(after, "http-reuse", "# reuse", 1),
		"no default-server":  strings.Replace(after, "default-server", "# default", 1),
		"no forwardfor":      strings.Replace(after, "option forwardfor", "", 1),
		"two default-server": strings.Replace(after, "    default-server check", "    default-server check inter 1s\n    default-server check", 1),
	} {
		if _, err := Before(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestRenderOnlyServersDiffer: the proxies and the nginx baseline are
// behind the same configuration but for their server lines, and the
// balance override reaches the backend.
func TestRenderOnlyServersDiffer(t *testing.T) {
	s := Setup{Host: "127.0.0.4", Source: "127.0.0.4", CertFile: "/x.pem", Servers: servers("127.0.0", 2)}
	a, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	s.Servers = servers("127.0.1", 2)
	b, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	gone, added := changed(a, b)
	for _, l := range append(gone, added...) {
		if !strings.HasPrefix(l, "server b") {
			t.Errorf("line %q differs", l)
		}
	}
	if len(gone) != 4 || len(added) != 4 {
		t.Errorf("%d and %d lines differ, want the 2 server lines of each backend of proxies (proxies, proxies_live)", len(gone), len(added))
	}
	s.Balance = "uri-consistent"
	c, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c, "    balance uri\n    hash-type consistent\n") {
		t.Errorf("uri-consistent renders no consistent hashing:\n%s", c)
	}
}

// TestServersUp reads HAProxy's stats CSV, header first.
func TestServersUp(t *testing.T) {
	csv := `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
web,FRONTEND,,,0,1,100,1,0,0,0,0,0,,,,,OPEN,
proxies,proxy-01,0,0,0,1,,1,0,0,,0,,0,0,0,0,UP,1
proxies,proxy-02,0,0,0,1,,1,0,0,,0,,0,0,0,0,DOWN,1
proxies,proxy-03,0,0,0,1,,1,0,0,,0,,0,0,0,0,UP,1
proxies,BACKEND,0,0,0,1,,1,0,0,,0,,0,0,0,0,UP,2
app,primary-app,0,0,0,1,,1,0,0,,0,,0,0,0,0,UP,1
`
	up, err := localfleet.ParseServersUp(strings.NewReader(csv), "proxies")
	if err != nil || !slices.Equal(up, []string{"proxy-01", "proxy-03"}) {
		t.Fatalf("got %v, %v; want proxy-01 and proxy-03", up, err)
	}
	if _, err := localfleet.ParseServersUp(strings.NewReader("proxies,proxy-01,UP\n"), "proxies"); err == nil {
		t.Fatal("no error without the header line")
	}
}

// TestStart runs HAProxy from the shared settings in front of two nginx
// backends, for real: it waits until both are up, and a short link is
// answered over HTTP and HTTPS.
func TestStart(t *testing.T) {
	dir := t.TempDir()
	subnet := fmt.Sprintf("127.%d.%d", 1+rand.IntN(254), rand.IntN(256))
	host := subnet + ".4"
	srv := servers(subnet, 2)
	var addrs []string
	for _, s := range srv {
		addrs = append(addrs, net.JoinHostPort(s.Addr, "8080"))
	}
	ng, err := baseline.StartNginxBackends(filepath.Join(dir, "nginx"), addrs)
	if err != nil {
		t.Fatal(err)
	}
	defer ng.Stop()
	h, err := Start(context.Background(), Setup{Dir: filepath.Join(dir, "haproxy"), Host: host, Source: host,
		CertFile: certFile(t, dir, host), Servers: srv})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	for _, u := range []string{h.URL, h.TLSURL} {
		resp, err := client.Get(u + "/Abc1234")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Errorf("%s: status %d, want nginx's 302 through HAProxy", u, resp.StatusCode)
		}
	}
	// Two requests, each to a server connection: opened or reused.
	st, err := h.BackendStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Connect < 1 || st.Connect+st.Reuse != 2 {
		t.Errorf("backend statistics %+v: want the 2 requests' connections, opened or reused", st)
	}
}

// TestParseBackend reads the proxies backend's row, by column name, from
// statistics as HAProxy 2.6 writes them (trimmed to some columns, in
// their order there).
func TestParseBackend(t *testing.T) {
	csv := "# pxname,svname,qcur,qmax,scur,smax,status,connect,reuse,qtime,ctime,rtime,ttime,\n" +
		"web,FRONTEND,,,4,64,OPEN,,,,,,,\n" +
		"proxies,proxy-01,0,0,1,54,UP,65,52735,0,0,1,4,\n" +
		"proxies,BACKEND,0,3,2,64,UP,119,105481,1,2,1,3,\n"
	got, err := ParseBackend(csv, "proxies")
	if err != nil {
		t.Fatal(err)
	}
	want := Backend{Connect: 119, Reuse: 105481, Qmax: 3, Qtime: 1, Ctime: 2, Rtime: 1, Ttime: 3}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := ParseBackend(csv, "app"); err == nil {
		t.Fatal("no error for a backend the statistics lack")
	}
}
