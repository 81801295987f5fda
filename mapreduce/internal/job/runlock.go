package job

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// lockedRun is a run or a recompute that holds the run lock, recorded in
// mapreduce_runs.
type lockedRun struct {
	j    *Job
	conn *pgxpool.Conn // holds the lock: the run's reads and its transaction go through it
	id   int64
}

// startRun takes the run lock on a connection of its own and records the
// start of a run of kind ("run" or "recompute") in mapreduce_runs. Runs
// and recomputes both start here and end in end, so the metrics count
// them alike: one that finds the lock held returns ErrLocked and counts as
// locked, one that starts counts as a run, and one that fails as failed.
// The caller must call end once it is done.
func (j *Job) startRun(ctx context.Context, kind string) (*lockedRun, error) {
	conn, err := j.db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to primary: %w", err)
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, LockKey).Scan(&locked); err != nil {
		conn.Release()
		return nil, fmt.Errorf("take run lock: %w", err)
	}
	if !locked {
		conn.Release()
		j.lockedRuns.Add(1)
		return nil, ErrLocked
	}
	r := &lockedRun{j: j, conn: conn}
	j.dims.Trim() // no value ids are held between runs
	if err := conn.QueryRow(ctx, `INSERT INTO mapreduce_runs (kind) VALUES ($1) RETURNING id`, kind).Scan(&r.id); err != nil {
		r.unlock()
		return nil, fmt.Errorf("record run: %w", err)
	}
	j.runs.Add(1)
	return r, nil
}

// end records a failed run (err set) in the metrics and in its
// mapreduce_runs row, with the error and res's figures, then releases the
// lock and the connection. A run that succeeds has written its row in its
// own transaction.
func (r *lockedRun) end(res *Result, err error) {
	if err != nil {
		r.j.failedRuns.Add(1)
		_, _ = r.j.db.Exec(context.Background(), `UPDATE mapreduce_runs SET finished_at = now(), error = $2,
			proxies_down = $3, failed = $4, unknown_version = $5 WHERE id = $1`,
			r.id, err.Error(), len(res.ProxiesDown), len(res.Failed), res.UnknownVersion)
	}
	r.unlock()
}

func (r *lockedRun) unlock() {
	// A lost connection releases the lock by itself.
	_, _ = r.conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, LockKey)
	r.conn.Release()
}
