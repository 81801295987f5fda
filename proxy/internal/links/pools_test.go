package links

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestPools: the replica's pool holds 16 connections unless its address
// says otherwise, the primary's 8 whatever it says; an address that does
// not parse is refused. The pools connect lazily: no database is needed.
func TestPools(t *testing.T) {
	ctx := context.Background()
	const addr = "postgres://shortfleet@127.0.0.1:1/shortfleet"
	for _, tc := range []struct {
		name string
		open func(context.Context, string) (*pgxpool.Pool, error)
		dsn  string
		want int32
	}{
		{"replica", OpenReplica, addr, 16},
		{"replica with pool_max_conns", OpenReplica, addr + "?pool_max_conns=3", 3},
		{"primary", OpenPrimary, addr, 8},
		{"primary with pool_max_conns", OpenPrimary, addr + "?pool_max_conns=3", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.open(ctx, tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got := p.Config().MaxConns; got != tc.want {
				t.Fatalf("%d connections, want %d", got, tc.want)
			}
		})
	}
	for _, open := range []func(context.Context, string) (*pgxpool.Pool, error){OpenReplica, OpenPrimary} {
		if p, err := open(ctx, "postgres://[::1"); err == nil {
			p.Close()
			t.Fatal("an address that does not parse was taken")
		}
	}
}
