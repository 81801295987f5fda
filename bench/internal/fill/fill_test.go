package fill

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestCodes: every code of the file is asked for exactly once, and the
// answers that are not redirects are counted.
func TestCodes(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		p := string(ctx.Path())
		mu.Lock()
		asked = append(asked, p)
		mu.Unlock()
		if p == "/missing" {
			ctx.SetStatusCode(fasthttp.StatusNotFound)
			return
		}
		ctx.Redirect("https://example.com"+p, fasthttp.StatusFound)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown()
	file := filepath.Join(t.TempDir(), "codes.txt")
	codes := []string{"aaaaaaa", "bbbbbbb", "missing", "ccccccc", "ddddddd"}
	var data string
	for _, c := range codes {
		data += c + "\n"
	}
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	bad, err := Codes(context.Background(), "http://"+ln.Addr().String(), file, 3)
	if err != nil {
		t.Fatal(err)
	}
	if bad != 1 {
		t.Fatalf("%d answers counted as not redirects, want 1", bad)
	}
	sort.Strings(asked)
	want := []string{"/aaaaaaa", "/bbbbbbb", "/ccccccc", "/ddddddd", "/missing"}
	if len(asked) != len(want) {
		t.Fatalf("asked %v, want each of %v once", asked, want)
	}
	for i := range want {
		if asked[i] != want[i] {
			t.Fatalf("asked %v, want each of %v once", asked, want)
		}
	}
}
