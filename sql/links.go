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
	// LinkFeatures are issue 21's per-link options (linkrules.go).
	LinkFeatures
}

// LinkByID looks a link up by primary key. Proxies run it on their replica.
func LinkByID(ctx context.Context, q Querier, id int64) (Link, error) {
	l := Link{ID: id}
	var rt int16
	err := q.QueryRow(ctx,
		`SELECT target, redirect_type, disabled, `+featureColumns+` FROM links WHERE id = $1`, id,
	).Scan(append([]any{&l.Target, &rt, &l.Disabled}, l.featureDests()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Link{}, ErrNotFound
	}
	if err != nil {
		return Link{}, fmt.Errorf("look up link %d: %w", id, err)
	}
	l.RedirectType = int(rt)
	return l, nil
}

// LinkCreateLock is the transaction-level advisory lock every transaction
// that creates links holds from before it draws ids until it commits. It
// makes link ids commit in increasing order, so when a replica has replayed
// link N it has replayed or will never see every id below N: a proxy may
// answer 404 at once for a missing id at or below its replica's largest id
// (README.md decision 2).
const LinkCreateLock int64 = 0x73686f72746c6e6b // "shortlnk"

// StatsWriteLock is the transaction-level advisory lock held by every
// transaction that writes a MapReduce run's stats and by an account's
// deletion. A run writes its links' stats only after it has dropped the
// links tombstoned so far, under the lock; a deletion waits for a run's
// write to commit before it deletes the stats, so a run's write can never
// bring back stats a deletion removed. A run's write takes seconds.
const StatsWriteLock int64 = 0x73686f7274737477 // "shortstw"

// MaxLinkID is the largest link id the database has, 0 for none.
func MaxLinkID(ctx context.Context, q Querier) (int64, error) {
	var id int64
	if err := q.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM links`).Scan(&id); err != nil {
		return 0, fmt.Errorf("largest link id: %w", err)
	}
	return id, nil
}

// AliasLink returns the id of the link an alias names.
func AliasLink(ctx context.Context, q Querier, alias string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT link_id FROM aliases WHERE alias = $1`, alias).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("look up alias: %w", err)
	}
	return id, nil
}

// LinksByIDs looks up several links by primary key in one round trip; ids
// without a link are absent from the result, which follows no order.
func LinksByIDs(ctx context.Context, q Querier, ids []int64, out []Link) ([]Link, error) {
	rows, err := q.Query(ctx, `SELECT id, target, redirect_type, disabled, `+featureColumns+` FROM links WHERE id = ANY($1)`, ids)
	if err != nil {
		return out, fmt.Errorf("look up %d links: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var l Link
		var rt int16
		if err := rows.Scan(append([]any{&l.ID, &l.Target, &rt, &l.Disabled}, l.featureDests()...)...); err != nil {
			return out, fmt.Errorf("look up %d links: %w", len(ids), err)
		}
		l.RedirectType = int(rt)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("look up %d links: %w", len(ids), err)
	}
	return out, nil
}
