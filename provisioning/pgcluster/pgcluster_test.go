package pgcluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPrimaryAndReplica starts a primary and a streaming hot standby, writes
// on the primary and reads the row back from the standby once it replayed.
func TestPrimaryAndReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	primary := StartTestPrimary(t)
	replica := StartTestReplica(t, primary, "replica-a")

	conn, err := primary.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (v int); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	lsn, err := primary.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.WaitReplay(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	rconn, err := replica.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer rconn.Close(ctx)
	var v int
	var inRecovery bool
	if err := rconn.QueryRow(ctx, `SELECT v, pg_is_in_recovery() FROM t`).Scan(&v, &inRecovery); err != nil {
		t.Fatal(err)
	}
	if v != 42 || !inRecovery {
		t.Fatalf("replica read v=%d in_recovery=%v, want 42 true", v, inRecovery)
	}
	if _, err := rconn.Exec(ctx, `INSERT INTO t VALUES (1)`); err == nil {
		t.Fatal("a hot standby accepted a write")
	}
	var slots int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE active`).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if slots != 1 {
		t.Fatalf("%d active replication slots, want 1", slots)
	}
}

// TestWaitReplayStalled: a standby that stops moving (its replay paused
// here; a missing WAL segment does the same) makes WaitReplay give up after
// the stall with an error that says why, instead of hanging its caller; once
// it moves again the same wait succeeds.
func TestWaitReplayStalled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	primary := StartTestPrimary(t)
	replica := StartTestReplica(t, primary, "replica-stalled")
	rconn, err := replica.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer rconn.Close(ctx)
	if _, err := rconn.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	conn, err := primary.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (v int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	lsn, err := primary.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = replica.WaitReplayWithin(ctx, lsn, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "no progress for 2s") || !strings.Contains(err.Error(), "replay: paused") {
		t.Fatalf("waiting on a paused standby: %v, want a no-progress error naming the paused replay", err)
	}
	t.Logf("gave up as it should: %v", err)
	if ctx.Err() != nil {
		t.Fatalf("the wait ran into the test's deadline instead of giving up: %v", err)
	}
	if _, err := rconn.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	if err := replica.WaitReplayWithin(ctx, lsn, 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestCanTraverse: a folder on the path that the postgres user may not
// search (a checkout under /root, 0700) is refused with its name, before
// initdb fails with a bare "permission denied".
func TestCanTraverse(t *testing.T) {
	outer := filepath.Join(TestDir(t), "home")
	inner := filepath.Join(outer, "checkout", ".fleet", "pg")
	if err := os.MkdirAll(filepath.Dir(inner), 0o755); err != nil {
		t.Fatal(err)
	}
	const other = 65534 // neither the owner nor in the group of outer
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o700, false}, {0o750, false}, {0o701, true}, {0o755, true}} {
		if err := os.Chmod(outer, tc.mode); err != nil {
			t.Fatal(err)
		}
		err := canTraverse(inner, other, other)
		if (err == nil) != tc.ok {
			t.Errorf("mode %04o: got %v, want ok=%v", tc.mode, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), outer) {
			t.Errorf("mode %04o: %v does not name %s", tc.mode, err, outer)
		}
	}
	// The owner needs only its own bit.
	if err := os.Chmod(outer, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := canTraverse(inner, os.Getuid(), os.Getgid()); err != nil {
		t.Errorf("owner: %v", err)
	}
}
