// Package seed loads links into the primary fast, with COPY, for the
// benchmarks, and waits until every replica has replayed them.
package seed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	sfsql "shortfleet/sql"
	"shortfleet/sql/codes"
)

// Options tune a load.
type Options struct {
	// Workers is how many connections COPY at once (default 2). Each COPYs
	// its own chunks of the id range; chunks commit in id order.
	Workers int
	// Chunk is the links each COPY transaction carries (default 500,000).
	Chunk int64
}

// Links inserts n links owned by a bench user and returns the range of ids
// they got. Ids come from the links' sequence, as for links made through
// the API, under the same creation lock.
func Links(ctx context.Context, dsn string, n int64) (first, last int64, err error) {
	return LinksWith(ctx, dsn, n, Options{})
}

// LinksWith is Links with options. One session holds the creation lock
// (sfsql.LinkCreateLock) from before it reserves the ids until the last
// chunk has committed, and chunks commit in id order, so the invariant the
// proxies' quick 404s rest on (README.md decision 2) holds throughout: a
// replica that has replayed link N has every link below N.
func LinksWith(ctx context.Context, dsn string, n int64, o Options) (first, last int64, err error) {
	if n <= 0 {
		return 0, 0, fmt.Errorf("seed %d links: need at least one", n)
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Chunk <= 0 {
		o.Chunk = 500_000
	}
	lock, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer lock.Close(context.Background())
	var uid int64
	err = lock.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ('bench-' || md5(random()::text) || '@example.com', 'x') RETURNING id`).Scan(&uid)
	if err != nil {
		return 0, 0, fmt.Errorf("bench user: %w", err)
	}
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock($1)`, sfsql.LinkCreateLock); err != nil {
		return 0, 0, fmt.Errorf("creation lock: %w", err)
	}
	defer lock.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, sfsql.LinkCreateLock)
	// Reserve the whole range at once: nothing else can draw ids while the
	// lock is held, and the sequence is past the range when it is released.
	if err := lock.QueryRow(ctx, `SELECT nextval('link_id_seq')`).Scan(&first); err != nil {
		return 0, 0, err
	}
	last = first + n - 1
	if _, err := lock.Exec(ctx, `SELECT setval('link_id_seq', $1)`, last); err != nil {
		return 0, 0, err
	}

	chunks := int((n + o.Chunk - 1) / o.Chunk)
	committed := make([]chan struct{}, chunks)
	for i := range committed {
		committed[i] = make(chan struct{})
	}
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for c := range chunks {
			select {
			case next <- c:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range min(o.Workers, chunks) {
		g.Go(func() error {
			conn, err := pgx.Connect(gctx, dsn)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			// Commits wait for the WAL flush only; the load is redone
			// from scratch if the machine dies mid-way.
			if _, err := conn.Exec(gctx, `SET synchronous_commit = off`); err != nil {
				return err
			}
			// The owner was inserted above and the ids are fresh, so the
			// foreign key holds by construction: skip its per-row trigger,
			// which otherwise halves the speed of the load. Needs a
			// superuser, as the fleet's DSNs are; without one the check
			// runs.
			if _, err := conn.Exec(gctx, `SET session_replication_role = replica`); err != nil {
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
					return err
				}
			}
			for c := range next {
				lo := first + int64(c)*o.Chunk
				hi := min(lo+o.Chunk-1, last)
				if err := copyChunk(gctx, conn, uid, lo, hi, c == chunks-1, func() error {
					if c > 0 {
						select {
						case <-committed[c-1]:
						case <-gctx.Done():
							return gctx.Err()
						}
					}
					return nil
				}); err != nil {
					return fmt.Errorf("copy links %d..%d: %w", lo, hi, err)
				}
				close(committed[c])
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	return first, last, nil
}

// copyChunk COPYs links lo..hi in one transaction, and commits it once
// before() returns. The last chunk commits synchronously: its commit
// flushes every earlier one, which the others leave in WAL buffers, so
// the primary's write position (what WaitReplayed waits for) covers every
// link made. The insert position would cover them too, but it also covers
// WAL that no commit flushed (a page pruned by a read, say), which can sit
// in the WAL buffers until the next standby snapshot record, up to 15 s
// later, and a wait for it stalls that long.
func copyChunk(ctx context.Context, conn *pgx.Conn, uid, lo, hi int64, last bool, before func() error) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	id := lo
	var buf []byte
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"links"}, []string{"id", "user_id", "target"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if id > hi {
				return nil, nil
			}
			buf = append(buf[:0], "https://example.com/landing/"...)
			buf = strconv.AppendInt(buf, id, 10)
			buf = append(buf, "?utm_source=bench"...)
			row := []any{id, uid, string(buf)}
			id++
			return row, nil
		}))
	if err != nil {
		return err
	}
	if err := before(); err != nil {
		return err
	}
	if last {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = on`); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// Settle does to the links table what a long-running fleet's autovacuum
// has done to its links long before anyone measures them, right after a
// bulk load: VACUUM (FREEZE, ANALYZE). Freezing writes every page's
// tuples as frozen, and the replicas replay it, so a read there needs no
// commit-log lookup and sets no hint bit (a replica's hint bits dirty the
// page only in its own buffers, and are set again after every eviction);
// the visibility map marks every page all-visible (index-only scans);
// and the planner has statistics for the table's real size. Without it,
// the primary's autovacuum starts on the loaded table while the
// benchmark runs: at 10 M links it was a quarter of the way through when
// the cold run began, its WAL replaying on the replica under the
// measurement. Settle returns once the work is durable on the primary
// (a synchronous commit after it); WaitReplayed then waits for the
// replicas.
func Settle(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// A standby with hot_standby_feedback holds the primary's horizon
	// back to what it had replayed at its last report (every
	// wal_receiver_status_interval): until it has reported past the
	// load, VACUUM would find the loaded rows not yet visible to all,
	// and freeze and mark nothing.
	var x string
	if err := conn.QueryRow(ctx, `SELECT (txid_current() % 4294967296)::text`).Scan(&x); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	for {
		var behind int
		err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE xmin IS NOT NULL AND age(xmin) >= age($1::xid))
			+ (SELECT count(*) FROM pg_stat_replication WHERE backend_xmin IS NOT NULL AND age(backend_xmin) >= age($1::xid))`, x).Scan(&behind)
		if err != nil {
			return fmt.Errorf("settle: standbys' horizon: %w", err)
		}
		if behind == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("settle: standbys' horizon still before the load: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// One statement an Exec: VACUUM cannot run in a transaction, which
	// several statements in one simple query are.
	if _, err := conn.Exec(ctx, `VACUUM (FREEZE, ANALYZE) links`); err != nil {
		return fmt.Errorf("vacuum links: %w", err)
	}
	// VACUUM's WAL may sit in the WAL buffers, unwritten, for seconds; a
	// commit that writes WAL flushes everything before it, so the write
	// position WaitReplayed waits for covers the vacuum.
	if _, err := conn.Exec(ctx, `SELECT txid_current()`); err != nil {
		return fmt.Errorf("flush vacuum's WAL: %w", err)
	}
	return nil
}

// Prewarm reads the links table and its primary key into the shared
// buffers of each replica (replicaDSNs) with pg_prewarm, as a replica that
// has served lookups for a while holds them (and as an operator warms one
// after a restart, or keeps them with pg_prewarm's autoprewarm): a
// benchmark's few seconds of warm-up touch a few per cent of a large
// table's pages. It creates the extension on the primary (primaryDSN)
// first, which needs a superuser, and returns the blocks read on each
// replica: no more than its shared_buffers hold stay there.
func Prewarm(ctx context.Context, primaryDSN string, replicaDSNs []string) ([]int64, error) {
	conn, err := pgx.Connect(ctx, primaryDSN)
	if err != nil {
		return nil, err
	}
	_, err = conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_prewarm`)
	conn.Close(context.Background())
	if err != nil {
		return nil, fmt.Errorf("prewarm: %w", err)
	}
	if _, err := WaitReplayed(ctx, primaryDSN, replicaDSNs); err != nil {
		return nil, err
	}
	var blocks []int64
	for _, dsn := range replicaDSNs {
		rc, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return nil, err
		}
		// The heap first, the index last: where both do not fit, the
		// index, which every lookup reads, is what stays.
		var total int64
		for _, rel := range []string{"links", "links_pkey"} {
			var n int64
			if err = rc.QueryRow(ctx, `SELECT pg_prewarm($1)`, rel).Scan(&n); err != nil {
				break
			}
			total += n
		}
		rc.Close(context.Background())
		if err != nil {
			return nil, fmt.Errorf("prewarm: %w", err)
		}
		blocks = append(blocks, total)
	}
	return blocks, nil
}

// WaitReplayed waits until every replica (standby DSNs) has replayed all
// the primary had written when it was called, and returns how long that
// took. (Links' last commit is synchronous, so what it made is written.)
func WaitReplayed(ctx context.Context, primaryDSN string, replicaDSNs []string) (time.Duration, error) {
	t := time.Now()
	conn, err := pgx.Connect(ctx, primaryDSN)
	if err != nil {
		return 0, err
	}
	var lsn string
	err = conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn)
	conn.Close(context.Background())
	if err != nil {
		return 0, fmt.Errorf("primary's WAL position: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, dsn := range replicaDSNs {
		g.Go(func() error {
			rc, err := pgx.Connect(gctx, dsn)
			if err != nil {
				return err
			}
			defer rc.Close(context.Background())
			for {
				var done bool
				if err := rc.QueryRow(gctx, `SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)`, lsn).Scan(&done); err != nil {
					return fmt.Errorf("replica's replay position: %w", err)
				}
				if done {
					return nil
				}
				select {
				case <-gctx.Done():
					return fmt.Errorf("replica did not replay %s: %w", lsn, gctx.Err())
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
	return time.Since(t), g.Wait()
}

// WriteCodes writes the codes of ids [first, last] to path, one a line.
func WriteCodes(path string, codec *codes.Codec, first, last int64) error {
	var b strings.Builder
	b.Grow(int(last-first+1) * (codes.Length + 1))
	buf := make([]byte, 0, codes.Length)
	for id := first; id <= last; id++ {
		buf, _ = codec.AppendEncode(buf[:0], id)
		b.Write(buf)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// WriteSample writes k codes drawn uniformly, with replacement, from ids
// [first, last] to path, one a line; all of them in order when the range
// holds no more than k. wrk's Lua loads a file of 10 M codes in about a
// minute and 700 MB, per run; a uniform sample of a million spreads the
// lookups over the whole table as well.
func WriteSample(path string, codec *codes.Codec, first, last int64, k int, rng *rand.Rand) error {
	if last-first+1 <= int64(k) {
		return WriteCodes(path, codec, first, last)
	}
	var b strings.Builder
	b.Grow(k * (codes.Length + 1))
	buf := make([]byte, 0, codes.Length)
	for range k {
		buf, _ = codec.AppendEncode(buf[:0], first+rng.Int64N(last-first+1))
		b.Write(buf)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// Distinct draws k ids uniformly, without replacement, from [first, last],
// in random order: the codes of an open-loop cold run, each asked once, so
// every request is a lookup of a link nobody asked for before.
func Distinct(first, last int64, k int, rng *rand.Rand) ([]int64, error) {
	n := last - first + 1
	if k < 0 || int64(k) > n {
		return nil, fmt.Errorf("distinct ids: want %d of a range of %d", k, n)
	}
	// Floyd's algorithm: k draws, each taking a new id.
	seen := make(map[int64]struct{}, k)
	ids := make([]int64, 0, k)
	for j := n - int64(k); j < n; j++ {
		t := rng.Int64N(j + 1)
		if _, ok := seen[t]; ok {
			t = j
		}
		seen[t] = struct{}{}
		ids = append(ids, first+t)
	}
	rng.Shuffle(len(ids), func(a, b int) { ids[a], ids[b] = ids[b], ids[a] })
	return ids, nil
}
