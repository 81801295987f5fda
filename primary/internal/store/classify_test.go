package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	sfsql "shortfleet/sql"
)

// TestClassify: what a client may retry (a database going away, busy, or
// mid-failover) is ErrUnavailable, answered 503 with Retry-After; a bug or
// a broken rule (a check or foreign key violated, bad SQL) is not, and
// stays a 500. Before, a creation during a failover drill got a 500 for a
// cancelled query. Each error is counted once, in its class, for /metrics
// (shortfleet_app_db_errors_total{class}).
func TestClassify(t *testing.T) {
	s := &Store{}
	want := map[string]uint64{}
	for _, tc := range []struct {
		code        string
		unavailable bool
		class       string
	}{
		{"08006", true, "connection"},             // connection failure
		{"57P01", true, "operator_intervention"},  // admin shutdown
		{"57014", true, "operator_intervention"},  // query cancelled
		{"53300", true, "insufficient_resources"}, // too many connections
		{"53100", true, "insufficient_resources"}, // disk full
		{"40001", true, "transaction_rollback"},   // serialization failure
		{"40P01", true, "transaction_rollback"},   // deadlock
		{"25006", true, "read_only"},              // read-only transaction
		{"23514", false, "other"},                 // check violation
		{"23503", false, "other"},                 // foreign key violation
		{"42601", false, "other"},                 // syntax error
	} {
		err := s.classify(fmt.Errorf("create link: %w", &pgconn.PgError{Code: tc.code, Message: "m"}))
		if got := errors.Is(err, ErrUnavailable); got != tc.unavailable {
			t.Errorf("SQLSTATE %s: unavailable %v, want %v (%v)", tc.code, got, tc.unavailable, err)
		}
		want[tc.class]++
	}
	for _, tc := range []struct {
		err         error
		unavailable bool
		class       string
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true, "connection"},
		{context.Canceled, false, "canceled"},
		{nil, false, ""},
		{fmt.Errorf("get link: %w", sfsql.ErrNotFound), false, ""},
	} {
		if got := errors.Is(s.classify(tc.err), ErrUnavailable); got != tc.unavailable {
			t.Errorf("%v: unavailable %v, want %v", tc.err, got, tc.unavailable)
		}
		if tc.class != "" {
			want[tc.class]++
		}
	}
	// A connection attempt that times out (connect_timeout) wraps
	// context.DeadlineExceeded, as every host of a multi-host DSN does when
	// none answers: the database is unavailable, not the client gone.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepted, never answered
		}
	}()
	_, err = pgconn.Connect(context.Background(), "postgres://u@"+ln.Addr().String()+"/db?sslmode=disable&connect_timeout=1")
	var connErr *pgconn.ConnectError
	if !errors.As(err, &connErr) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connecting to a server that never answers: %v; want a ConnectError wrapping a deadline", err)
	}
	if err := s.classify(err); !errors.Is(err, ErrUnavailable) {
		t.Errorf("a connection attempt timed out: %v, want unavailable", err)
	}
	want["connection"]++
	got := s.DBErrors()
	for _, c := range ErrorClasses {
		if got[c] != want[c] {
			t.Errorf("class %s counted %d, want %d", c, got[c], want[c])
		}
	}
}
