package links

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	sfsql "shortfleet/sql"
)

// OpenReplica returns a pool on the local replica at dsn (connecting
// lazily). Misses wait on round trips, not CPU, so it holds 16
// connections, more than cores, unless dsn sets pool_max_conns.
func OpenReplica(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := sfsql.PoolConfig(dsn)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = 16
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// OpenPrimary returns a pool on the primary at dsn (connecting lazily),
// of 8 connections: only lookups of links newer than the replica's
// watermark go there, PrimaryConcurrency (default 8) at a time.
func OpenPrimary(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := sfsql.PoolConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 8
	return pgxpool.NewWithConfig(ctx, cfg)
}
