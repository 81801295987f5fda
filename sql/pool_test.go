package sql

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPoolConfigPeerTimeout: connections dialled through PoolConfig carry
// TCP_USER_TIMEOUT and keepalives, so a pooled connection to a host cut
// off the network fails in PeerTimeout instead of hanging.
func TestPoolConfigPeerTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg, err := PoolConfig("postgres://u@" + l.Addr().String() + "/db")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := cfg.ConnConfig.DialFunc(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var userTimeout, keepalive int
	var gerr error
	raw.Control(func(fd uintptr) {
		userTimeout, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
		if gerr == nil {
			keepalive, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		}
	})
	if gerr != nil {
		t.Fatal(gerr)
	}
	if userTimeout != int(PeerTimeout.Milliseconds()) || keepalive != 1 {
		t.Fatalf("TCP_USER_TIMEOUT %d ms, SO_KEEPALIVE %d; want %d ms and 1", userTimeout, keepalive, PeerTimeout.Milliseconds())
	}
	// A Unix socket is left alone.
	if _, err := cfg.ConnConfig.DialFunc(ctx, "unix", "/nonexistent/.s.PGSQL.5432"); err == nil {
		t.Fatal("dialled a socket that does not exist")
	}
}
