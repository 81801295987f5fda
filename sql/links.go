package sql

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound is returned when a row asked for does not exist.
var ErrNotFound = errors.New("not found")

// Querier is what a query needs: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Link is what a redirect needs to know about a link.
type Link struct {
	ID           int64
	Target       string
	RedirectType int
	Disabled     bool
}

// LinkByID looks a link up by primary key. Proxies run it on their replica.
func LinkByID(ctx context.Context, q Querier, id int64) (Link, error) {
	l := Link{ID: id}
	var rt int16
	err := q.QueryRow(ctx,
		`SELECT target, redirect_type, disabled FROM links WHERE id = $1`, id,
	).Scan(&l.Target, &rt, &l.Disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return Link{}, ErrNotFound
	}
	if err != nil {
		return Link{}, fmt.Errorf("look up link %d: %w", id, err)
	}
	l.RedirectType = int(rt)
	return l, nil
}
