package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestClassify: what a client may retry (a database going away, busy, or
// mid-failover) is ErrUnavailable, answered 503 with Retry-After; a bug or
// a broken rule (a check or foreign key violated, bad SQL) is not, and
// stays a 500. Before, a creation during a failover drill got a 500 for a
// cancelled query.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		code        string
		unavailable bool
	}{
		{"08006", true},  // connection failure
		{"57P01", true},  // admin shutdown
		{"57014", true},  // query cancelled
		{"53300", true},  // too many connections
		{"53100", true},  // disk full
		{"40001", true},  // serialization failure
		{"40P01", true},  // deadlock
		{"25006", true},  // read-only transaction
		{"23514", false}, // check violation
		{"23503", false}, // foreign key violation
		{"42601", false}, // syntax error
	} {
		err := classify(fmt.Errorf("create link: %w", &pgconn.PgError{Code: tc.code, Message: "m"}))
		if got := errors.Is(err, ErrUnavailable); got != tc.unavailable {
			t.Errorf("SQLSTATE %s: unavailable %v, want %v (%v)", tc.code, got, tc.unavailable, err)
		}
	}
}
