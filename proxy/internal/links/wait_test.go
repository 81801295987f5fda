package links

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"shortfleet/provisioning/pgcluster"
)

// unreachable is a pool on an address where nothing listens.
func unreachable(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestWaitPolled: while no database answers, WaitPolled goes on waiting
// (until its context ends) and the watermark stays unknown; it returns
// once the replica has been polled, with its watermark, or, the replica
// down, once the primary has.
func TestWaitPolled(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	down, err := New(Config{}, quiet, unreachable(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := down.WaitPolled(ctx); !errors.Is(err, context.DeadlineExceeded) || down.Polled() {
		t.Fatalf("no database answers: WaitPolled %v, Polled %v; want the context's end and not polled", err, down.Polled())
	}

	_, pdb := pgcluster.StartTestDatabase(t)
	var id int64
	if err := pdb.QueryRow(context.Background(), `WITH u AS (INSERT INTO users (email, password_hash) VALUES ('w@example.com', 'x') RETURNING id)
		INSERT INTO links (user_id, target) SELECT id, 'https://example.com/' FROM u RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	// The primary stands in for the replica: the same tables, polled the
	// same way.
	r, err := New(Config{}, quiet, pdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.WaitPolled(context.Background()); err != nil || !r.Polled() || r.Watermark() != id {
		t.Fatalf("the replica answers: WaitPolled %v, Polled %v, watermark %d; want nil, true, %d", err, r.Polled(), r.Watermark(), id)
	}
	viaPrimary, err := New(Config{}, quiet, unreachable(t), pdb)
	if err != nil {
		t.Fatal(err)
	}
	defer viaPrimary.Close()
	if err := viaPrimary.WaitPolled(context.Background()); err != nil || !viaPrimary.Polled() {
		t.Fatalf("the replica is down, the primary answers: WaitPolled %v, Polled %v; want nil, true", err, viaPrimary.Polled())
	}
}
