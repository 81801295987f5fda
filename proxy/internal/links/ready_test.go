package links

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestReadyFollowsThePoller: a lookup the replica fails sends misses to
// the primary until the next poll but leaves the proxy ready; only a
// failed poll takes it out of the balancer. Before, one timed-out lookup
// made /readyz fail, and with an overloaded replica every proxy reading
// it dropped out at once (lbbench: HAProxy answered 503 to 78% of a run).
func TestReadyFollowsThePoller(t *testing.T) {
	// A poll a minute old still counts as fresh: the failed lookup below,
	// slowed by a loaded machine, must not make the last poll stale.
	r, err := New(Config{PollInterval: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)), unreachable(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// As after a successful poll of a replica that has links 1 to 100.
	r.loaded.Store(true)
	r.polled.Store(true)
	r.replicaOK.Store(true)
	r.watermark.Store(100)
	r.lastPoll.Store(time.Now().UnixNano())
	if ok, why := r.Ready(); !ok {
		t.Fatalf("not ready before: %s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := r.lookup(ctx, 5); err == nil {
		t.Fatal("a lookup on an unreachable replica (and no primary) succeeded")
	}
	if r.replicaOK.Load() {
		t.Fatal("a failed lookup did not send misses to the primary")
	}
	if ok, why := r.Ready(); !ok {
		t.Fatalf("a failed lookup made the proxy unready: %s", why)
	}
	r.Poll(ctx)
	if ok, why := r.Ready(); ok || !strings.HasPrefix(why, "replica unreachable: ") {
		t.Fatalf("after a failed poll: ready %v, %q", ok, why)
	}
}

// TestLagAfterAQuietSpell: the age of the last replayed transaction is no
// lag when the replica was caught up a moment ago. A minute after the
// last commit, WAL without one (autovacuum) read as a minute behind and
// took every proxy out of the balancer.
func TestLagAfterAQuietSpell(t *testing.T) {
	var s replayStall
	t0 := time.Now()
	// Never seen caught up (a proxy starting beside a lagging replica):
	// Postgres's figure stands.
	if got := s.lag(int64(30*time.Second), "0/10", t0); got != int64(30*time.Second) {
		t.Fatalf("first poll: lag %v, want Postgres's 30s", time.Duration(got))
	}
	if got := s.lag(0, "0/20", t0.Add(time.Second)); got != 0 {
		t.Fatalf("caught up: lag %v", time.Duration(got))
	}
	// 100 ms later WAL is waiting; the last commit was 60 s ago.
	if got := s.lag(int64(60*time.Second), "0/20", t0.Add(1100*time.Millisecond)); got != int64(100*time.Millisecond) {
		t.Fatalf("after a quiet spell: lag %v, want the 100ms since caught up", time.Duration(got))
	}
	// Behind for good: the lag grows with the time since caught up, to
	// Postgres's figure.
	if got := s.lag(int64(20*time.Second), "0/30", t0.Add(31*time.Second)); got != int64(20*time.Second) {
		t.Fatalf("behind for 30 s, Postgres says 20 s: lag %v", time.Duration(got))
	}
}
