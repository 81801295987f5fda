// Package rawhttp sends raw bytes to an HTTP server over real TCP and
// reads what it answers, for the hostile-client tests of both servers
// (the proxy's fasthttp listener and the primary's net/http one): requests
// no client library would send, and clients too slow or too idle to keep.
// It lives in provisioning, beside the other test infrastructure the
// binaries share, because neither binary may import the other's packages.
package rawhttp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Exchange writes raw on a new connection to addr and reads every response
// until the server closes the connection (closed true) or 10 s pass
// (closed false), and returns their statuses in order. A write the server
// cuts short is no failure: a server may answer a request it refuses and
// close before reading the rest, and what it answered is read all the
// same.
func Exchange(t testing.TB, addr, raw string) (statuses []int, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return statuses, !(errors.As(err, &ne) && ne.Timeout())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
}

// Slowloris writes head, the start of a request, then one more header line
// every 100 ms, for ever, until the server closes the connection, and
// returns what the server sent before closing it. The test fails if the
// server keeps the connection 30 s.
func Slowloris(t testing.TB, addr, head string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, head)
	done := make(chan []byte, 1) // the reader must not outlive a failed test
	go func() { b, _ := io.ReadAll(c); done <- b }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case b := <-done:
			t.Logf("slowloris cut off after %s: %q", time.Since(start).Round(time.Millisecond), FirstLine(b))
			return b
		case <-tick.C:
			if time.Since(start) > 30*time.Second {
				t.Fatal("a slowloris connection was kept for 30 s")
			}
			io.WriteString(c, "X-Slow: 1\r\n")
		}
	}
}

// IdleKeepAlive writes req, a request that keeps the connection open,
// reads its response, which must have status want, then sends nothing
// more: the server must close the idle connection within 30 s.
func IdleKeepAlive(t testing.TB, addr, req string, want int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, req)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("first request: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("first request: %d, want %d", resp.StatusCode, want)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("an idle connection was not closed: %v", err)
	}
	t.Logf("idle connection closed after %s", time.Since(start).Round(time.Millisecond))
}

// FirstLine is the first line of a raw response: its status line.
func FirstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\r\n")
	return s
}
