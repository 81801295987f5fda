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
	r, err := New(Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), unreachable(t), nil)
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
