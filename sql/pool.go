package sql

import (
	"context"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sys/unix"
)

// PeerTimeout is how long a connection to Postgres waits on a peer that
// stopped answering before the kernel drops it: data sent and not
// acknowledged for that long (TCP_USER_TIMEOUT), or an idle connection
// whose keepalive probes go unanswered. A host cut off the network
// answers nothing, not even a reset; without it, a pooled connection to
// the old primary hangs a query for the kernel's fifteen minutes, and
// the primary app's one group-commit writer with it (the partition drill,
// TestFailoverDrills, found this).
const PeerTimeout = 10 * time.Second

// PoolConfig parses dsn as pgxpool.ParseConfig does, with PeerTimeout on
// every TCP connection.
func PoolConfig(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3},
		Control: func(network, _ string, c syscall.RawConn) error {
			if network != "tcp" && network != "tcp4" && network != "tcp6" {
				return nil
			}
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(PeerTimeout.Milliseconds()))
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	cfg.ConnConfig.DialFunc = d.DialContext
	return cfg, nil
}

// OpenPool opens a pool on dsn (connecting lazily) with PoolConfig.
func OpenPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := PoolConfig(dsn)
	if err != nil {
		return nil, err
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}
