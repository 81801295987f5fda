package redirect

import (
	"context"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/valyala/fasthttp"

	"shortfleet/proxy/internal/links"
	"shortfleet/sql/codes"
)

// FuzzHandlePath sends arbitrary request targets and methods through the
// handler, with databases that refuse connections. Whatever arrives, the
// answer is a proper status, and a path that is neither a code nor
// alias-shaped never reaches a database.
func FuzzHandlePath(f *testing.F) {
	codec, _ := codes.New(testKey)
	code, _ := codec.Encode(42)
	for _, s := range []string{"/" + code, "/spring-sale", "/", "//", "/a/../b", "/%2e%2e/x", "/" + code + "?q=1#f",
		"http://host/" + code, "*", "/\x00", "/%zz", "/" + code + "%00"} {
		f.Add("GET", s)
	}
	f.Add("POST", "/"+code)
	f.Add("HEAD", "/x")
	dead, err := pgxpool.New(context.Background(), "postgres://x:y@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		f.Fatal(err)
	}
	defer dead.Close()
	r, err := links.New(links.Config{}, quiet, dead, dead)
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	s := New(Config{}, quiet, codec, r, nil)
	f.Fuzz(func(t *testing.T, method, uri string) {
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI(uri)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, nil)
		before := r.Stats()
		name := ctx.Path()
		touches := false
		if len(name) > 1 {
			if _, err := codec.Decode(name[1:]); err == nil || IsAliasShaped(name[1:]) {
				touches = true
			}
		}
		s.Handle(&ctx)
		switch st := ctx.Response.StatusCode(); st {
		case 302, 404, 405, 503:
		default:
			t.Fatalf("%s %q: status %d", method, uri, st)
		}
		after := r.Stats()
		if !touches && (after.ReplicaLookups != before.ReplicaLookups || after.PrimaryAsks != before.PrimaryAsks) {
			t.Fatalf("%s %q reached a database", method, uri)
		}
	})
}
