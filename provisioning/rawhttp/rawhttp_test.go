package rawhttp

import (
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// serve serves a handler answering 200 "ok" on real TCP with the given
// timeouts.
func serve(t *testing.T, readHeader, idle time.Duration) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ReadHeaderTimeout: readHeader, IdleTimeout: idle}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestExchange: pipelined requests are all answered, in order, and a
// Connection: close is seen as the server closing; a refused request (a
// header line without a colon) is answered 400 and closed.
func TestExchange(t *testing.T) {
	addr := serve(t, time.Minute, time.Minute)
	get := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	if got, closed := Exchange(t, addr, get+get+"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !slices.Equal(got, []int{200, 200, 200}) || !closed {
		t.Fatalf("three pipelined requests: %v (closed %v)", got, closed)
	}
	if got, closed := Exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n"+get); !slices.Equal(got, []int{400}) || !closed {
		t.Fatalf("a malformed header: %v (closed %v)", got, closed)
	}
}

// TestSlowAndIdle: a server with short timeouts cuts off the slowloris
// without answering it 200, and closes an idle keep-alive connection.
func TestSlowAndIdle(t *testing.T) {
	addr := serve(t, 300*time.Millisecond, 300*time.Millisecond)
	if b := Slowloris(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n"); strings.HasPrefix(FirstLine(b), "HTTP/1.1 200") {
		t.Fatalf("the slowloris was answered %q", FirstLine(b))
	}
	IdleKeepAlive(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200)
}

func TestFirstLine(t *testing.T) {
	for in, want := range map[string]string{"": "", "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n": "HTTP/1.1 408 Request Timeout", "no end": "no end"} {
		if got := FirstLine([]byte(in)); got != want {
			t.Errorf("FirstLine(%q) = %q, want %q", in, got, want)
		}
	}
}
