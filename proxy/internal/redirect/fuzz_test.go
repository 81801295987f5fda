package redirect

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

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
	s, r := deadDBServer(f, codec)
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

// FuzzClientAddr checks the X-Forwarded-For walk against a plain reading
// of its rule: over every header line, from the right, skip the trusted
// balancers; the first untrusted address is the client; garbage stops the
// walk at the last trusted address; with nothing untrusted, the leftmost
// trusted one. The port is X-Client-Port (decimal, 1-65535) only when the
// address is the header's rightmost, and 0 otherwise; a stranger's headers
// are ignored, and its socket's address and port are the client's.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"", "203.0.113.5", "203.0.113.5, 10.1.2.3", "1.2.3.4, 203.0.113.5", "garbage, 203.0.113.5",
		"203.0.113.5, garbage", "2001:db8::1", "::ffff:203.0.113.9", " , ,", "10.0.0.1,10.0.0.2", "fe80::1%eth0", "\xff"} {
		f.Add(s, "", "40000", true)
		f.Add(s, "", "40000", false)
	}
	f.Add("203.0.113.66", "203.0.113.5", "1", true)
	f.Add("203.0.113.66", "203.0.113.5, 10.1.2.3", "65535", true)
	f.Add("203.0.113.66", "garbage", "443", true)
	for _, p := range []string{"", "0", "65536", "-1", "+80", "0080", "80x", "0x50", "99999999999999999999", "\xff"} {
		f.Add("203.0.113.5", "", p, true)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("10.0.0.0/8")}
	s := New(Config{TrustedProxies: trusted}, quiet, nil, nil, nil)
	f.Fuzz(func(t *testing.T, xff, xff2, port string, fromBalancer bool) {
		peer := net.IPv4(192, 0, 2, 1)
		if fromBalancer {
			peer = net.IPv4(198, 51, 100, 7)
		}
		var req fasthttp.Request
		req.Header.Set(fasthttp.HeaderXForwardedFor, xff)
		if xff2 != "" {
			req.Header.Add(fasthttp.HeaderXForwardedFor, xff2)
		}
		if port != "" {
			req.Header.Set("X-Client-Port", port)
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: peer, Port: 4242}, nil)
		// The header as fasthttp kept it, read before clientAddr reuses
		// fasthttp's buffers.
		var parts []string
		for _, l := range req.Header.PeekAll(fasthttp.HeaderXForwardedFor) {
			parts = append(parts, strings.Split(string(l), ",")...)
		}
		kept := string(req.Header.Peek("X-Client-Port"))
		got, gotPort := s.clientAddr(&ctx)

		want, _ := netip.AddrFromSlice(peer.To4())
		wantPort, fromHeader := uint16(4242), false
		if fromBalancer {
			wantPort = 0
			rightmost := true
			for i := len(parts) - 1; i >= 0; i-- {
				p := strings.Trim(parts[i], " \t")
				if p == "" {
					continue
				}
				a, err := netip.ParseAddr(p)
				if err != nil {
					break
				}
				want, wantPort, fromHeader = a.Unmap(), 0, true
				if n, err := strconv.ParseUint(kept, 10, 16); rightmost && err == nil {
					wantPort = uint16(n)
				}
				rightmost = false
				if !inPrefixes(trusted, want) {
					break
				}
			}
		}
		if got != want || gotPort != wantPort {
			t.Fatalf("X-Forwarded-For %q %q, X-Client-Port %q from %v: client %v port %d, want %v port %d",
				xff, xff2, port, peer, got, gotPort, want, wantPort)
		}
		// The rule's consequences, stated plainly.
		if !fromBalancer && (got.String() != "192.0.2.1" || gotPort != 4242) {
			t.Fatalf("a stranger's headers were believed: %v port %d", got, gotPort)
		}
		if fromBalancer && gotPort != 0 && (!fromHeader || strconv.Itoa(int(gotPort)) != strings.TrimLeft(kept, "0")) {
			t.Fatalf("port %d from a balancer, X-Client-Port %q, address from the header %v", gotPort, kept, fromHeader)
		}
		if fromBalancer && !fromHeader && got.String() != "198.51.100.7" {
			t.Fatalf("client %v is neither the peer nor from the header", got)
		}
	})
}

// FuzzRawRequest feeds arbitrary bytes to fasthttp's request parser, as
// the listener does, and what parses to the handler: the answer is one of
// the handler's statuses, and a request with both Transfer-Encoding and
// Content-Length is refused and its connection closed.
func FuzzRawRequest(f *testing.F) {
	codec, _ := codes.New(testKey)
	code, _ := codec.Encode(42)
	for _, s := range []string{
		"GET /" + code + " HTTP/1.1\r\nHost: sho.rt\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n",
		"GET /\xff?\xfe HTTP/1.1\r\nHost: \xff\r\nUser-Agent: \xc3\r\n\r\n",
		"GET /x HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	s, _ := deadDBServer(f, codec)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req fasthttp.Request
		if err := req.ReadLimitBody(bufio.NewReader(bytes.NewReader(raw)), 4<<10); err != nil {
			return // fasthttp answers it 400, 413 or 431 (TestHostileHTTP)
		}
		framing := bytes.Contains(bytes.ToLower(req.Header.RawHeaders()), []byte("transfer-encoding")) &&
			bytes.Contains(bytes.ToLower(req.Header.RawHeaders()), []byte("content-length"))
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, nil)
		s.Handle(&ctx)
		st := ctx.Response.StatusCode()
		switch st {
		case 302, 400, 404, 405, 503:
		default:
			t.Fatalf("%q: status %d", raw, st)
		}
		if framingConflict(&req.Header) && (st != 400 || !ctx.Response.ConnectionClose()) {
			t.Fatalf("%q: a framing conflict answered %d, close %v", raw, st, ctx.Response.ConnectionClose())
		}
		if st == 400 && !framing {
			t.Fatalf("%q: 400 without a framing conflict in %q", raw, req.Header.RawHeaders())
		}
	})
}

// pipeListener hands out the server ends of in-memory connections whose
// remote address is a trusted balancer's.
type pipeListener struct {
	conns chan net.Conn
	from  net.Addr
}

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

func (l *pipeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return addrConn{c, l.from}, nil
}
func (l *pipeListener) Close() error   { return nil }
func (l *pipeListener) Addr() net.Addr { return l.from }

// FuzzProxyProtocolHeader sends arbitrary bytes as the start of a
// connection from a trusted balancer through the PROXY protocol listener:
// nothing panics or hangs; bytes that do not start with a PROXY signature
// reach the server unchanged, from the socket's address; a header that is
// accepted gives a valid client address and the bytes after it.
func FuzzProxyProtocolHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.9 127.0.0.1 40000 8080\r\nGET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 ::1 1 2\r\nx"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP4 999.0.0.1 1.1.1.1 70000 1\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xcb\x00\x71\x09\x7f\x00\x00\x01\x9c\x40\x1f\x90rest"))
	f.Add([]byte("GET /abc HTTP/1.1\r\nHost: x\r\n\r\n"))
	from := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}
	pl := &pipeListener{conns: make(chan net.Conn), from: from}
	ln := ProxyProtocolListener(pl, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		go func() {
			client.SetDeadline(time.Now().Add(30 * time.Second)) // catches a hang only
			client.Write(in)
			client.Close()
		}()
		go func() { pl.conns <- server }()
		c, err := ln.Accept()
		if err != nil {
			return // refused outright
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		got, readErr := io.ReadAll(c)
		remote := c.RemoteAddr()
		signed := bytes.HasPrefix(in, []byte("PROXY")) || bytes.HasPrefix(in, []byte("\r\n\r\n\x00\r\nQUIT\n"))
		if !signed && len(in) >= 12 {
			if readErr != nil || !bytes.Equal(got, in) {
				t.Fatalf("no header: read %q (%v), sent %q", got, readErr, in)
			}
			if remote.String() != from.String() {
				t.Fatalf("no header: remote %s, want the socket's %s", remote, from)
			}
		}
		if readErr == nil && remote != nil {
			if a, ok := remote.(*net.TCPAddr); ok && a.IP == nil {
				t.Fatalf("accepted header %q gave an address without an IP", in)
			}
		}
		if readErr == nil && !bytes.HasSuffix(in, got) {
			t.Fatalf("read %q, which is not the end of what was sent %q", got, in)
		}
	})
}

// deadDBServer is a Server whose replica and primary refuse connections:
// the fuzz targets see what the handler does with no database to answer.
func deadDBServer(tb testing.TB, codec *codes.Codec) (*Server, *links.Resolver) {
	tb.Helper()
	dead, err := pgxpool.New(context.Background(), "postgres://x:y@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(dead.Close)
	r, err := links.New(links.Config{}, quiet, dead, dead)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return New(Config{}, quiet, codec, r, nil), r
}
