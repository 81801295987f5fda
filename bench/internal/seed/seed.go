// Package seed loads links into the primary fast, with COPY, for the
// benchmarks.
package seed

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	sfsql "shortfleet/sql"
	"shortfleet/sql/codes"
)

// Links inserts n links owned by a bench user and returns the range of ids
// they got. Ids come from the links' sequence, as for links made through
// the API, under the same creation lock.
func Links(ctx context.Context, dsn string, n int64) (first, last int64, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	var uid int64
	err = conn.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ('bench-' || md5(random()::text) || '@example.com', 'x') RETURNING id`).Scan(&uid)
	if err != nil {
		return 0, 0, fmt.Errorf("bench user: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sfsql.LinkCreateLock); err != nil {
		return 0, 0, err
	}
	if err := tx.QueryRow(ctx, `SELECT nextval('link_id_seq')`).Scan(&first); err != nil {
		return 0, 0, err
	}
	var i int64
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"links"}, []string{"id", "user_id", "target"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			id := first + i
			i++
			return []any{id, uid, "https://example.com/landing/" + strconv.FormatInt(id, 10) + "?utm_source=bench"}, nil
		}))
	if err != nil {
		return 0, 0, fmt.Errorf("copy links: %w", err)
	}
	last = first + n - 1
	if _, err := tx.Exec(ctx, `SELECT setval('link_id_seq', $1)`, last); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, err
	}
	return first, last, nil
}

// WriteCodes writes the codes of ids [first, last] to path, one a line.
func WriteCodes(path string, codec *codes.Codec, first, last int64) error {
	var b strings.Builder
	buf := make([]byte, 0, codes.Length)
	for id := first; id <= last; id++ {
		buf, _ = codec.AppendEncode(buf[:0], id)
		b.Write(buf)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
