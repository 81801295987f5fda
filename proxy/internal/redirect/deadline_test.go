package redirect

import (
	"errors"
	"net"
	"testing"
	"time"
)

// lazyPair returns the server end, through LazyDeadlineListener, and the
// client end of a loopback TCP connection.
func lazyPair(t *testing.T) (server net.Conn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lazy := LazyDeadlineListener(ln)
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = lazy.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := server.(*lazyConn); !ok {
		t.Fatalf("accepted a %T, want a *lazyConn", server)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestLazyDeadlines: a deadline asked for holds on the socket whenever a
// read or write waits: a silent client's read and a stuck write time out
// at it, not before, and a deadline left on the socket from an earlier
// wait, earlier than the one asked for now, does not cut a read short.
func TestLazyDeadlines(t *testing.T) {
	t.Run("silent client", func(t *testing.T) {
		server, client := lazyPair(t)
		// Without the deadline on the socket the read would wait until
		// the client closes, and end in EOF.
		time.AfterFunc(5*time.Second, func() { client.Close() })
		want := time.Now().Add(200 * time.Millisecond)
		server.SetReadDeadline(want)
		_, err := server.Read(make([]byte, 16))
		if !isTimeout(err) {
			t.Fatalf("read ended with %v, want a timeout", err)
		}
		if now := time.Now(); now.Before(want) {
			t.Fatalf("read timed out %s before its deadline", want.Sub(now))
		}
	})
	t.Run("earlier deadline left on the socket", func(t *testing.T) {
		server, client := lazyPair(t)
		start := time.Now()
		server.SetReadDeadline(start.Add(100 * time.Millisecond))
		time.AfterFunc(10*time.Millisecond, func() { client.Write([]byte("a")) })
		b := make([]byte, 16)
		if n, err := server.Read(b); err != nil || string(b[:n]) != "a" {
			t.Fatalf("first read: %q, %v", b[:n], err)
		}
		// The socket still carries start+100ms; the read now asks for
		// start+1s and its data comes at start+300ms.
		server.SetReadDeadline(start.Add(time.Second))
		time.AfterFunc(300*time.Millisecond-time.Since(start), func() { client.Write([]byte("b")) })
		if n, err := server.Read(b); err != nil || string(b[:n]) != "b" {
			t.Fatalf("second read: %q, %v; want b, the socket's earlier deadline moved", b[:n], err)
		}
	})
	t.Run("stuck write", func(t *testing.T) {
		server, _ := lazyPair(t) // the client never reads
		want := time.Now().Add(200 * time.Millisecond)
		server.SetWriteDeadline(want)
		big := make([]byte, 64<<20)
		n, err := server.Write(big)
		if !isTimeout(err) || n >= len(big) {
			t.Fatalf("write of %d bytes wrote %d and ended with %v, want a timeout", len(big), n, err)
		}
		if now := time.Now(); now.Before(want) {
			t.Fatalf("write timed out %s before its deadline", want.Sub(now))
		}
	})
	t.Run("eof", func(t *testing.T) {
		server, client := lazyPair(t)
		client.Write([]byte("xy"))
		client.Close()
		b := make([]byte, 16)
		var got []byte
		for {
			n, err := server.Read(b)
			got = append(got, b[:n]...)
			if err != nil {
				if err.Error() != "EOF" || string(got) != "xy" {
					t.Fatalf("read %q then %v, want xy then EOF", got, err)
				}
				return
			}
		}
	})
}
