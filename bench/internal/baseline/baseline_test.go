package baseline

import (
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// freeAddrs returns n loopback addresses with a port free a moment ago.
func freeAddrs(t *testing.T, n int) []string {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		l.Close()
	}
	return addrs
}

// TestNginxBackends starts the balancer baseline's nginx for real with
// three backends and checks each: /readyz answers 200 and stays out of the
// log, every other path answers the baseline's 302 and is logged to the
// gzip log.
func TestNginxBackends(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // nginx's workers run as another user
	addrs := freeAddrs(t, 3)
	ng, err := StartNginxBackends(dir, addrs)
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(url string) (int, string) {
		resp, err := noRedirect.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Location")
	}
	for _, a := range addrs {
		if code, _ := get("http://" + a + "/readyz"); code != http.StatusOK {
			t.Errorf("%s/readyz: status %d, want 200", a, code)
		}
		if code, loc := get("http://" + a + "/Abc1234"); code != http.StatusFound || !strings.HasPrefix(loc, "https://example.com/") {
			t.Errorf("%s/Abc1234: status %d, Location %q; want the baseline's 302", a, code, loc)
		}
	}
	if ng.URL != "http://"+addrs[0] {
		t.Errorf("URL %q, want the first backend's", ng.URL)
	}
	if err := ng.Stop(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "access.log.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	log, err := io.ReadAll(zr)
	if err != nil && !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "GET /Abc1234 "); n != len(addrs) {
		t.Errorf("the gzip log has %d redirects, want %d:\n%s", n, len(addrs), log)
	}
	if strings.Contains(string(log), "/readyz") {
		t.Errorf("health checks were logged:\n%s", log)
	}
}

// TestStartNginxBackendsNone refuses a baseline with no backend.
func TestStartNginxBackendsNone(t *testing.T) {
	if _, err := StartNginxBackends(t.TempDir(), nil); err == nil {
		t.Fatal("started nginx with no backend")
	}
}
