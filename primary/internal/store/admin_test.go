package store

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// TestSuspensionReachesEveryInstance: the app runs as several instances,
// each with its own API key cache. A key cached by one instance is
// refused there once another instance suspended its account, and accepted
// again once the suspension is lifted. (Found by TestSuspendReachesProxies:
// the other instance kept answering the suspended key from its cache.)
func TestSuspensionReachesEveryInstance(t *testing.T) {
	a := testStore(t)
	b := New(a.db, a.codec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer b.Close()
	ctx := context.Background()
	u, key, err := a.CreateUser(ctx, "a@example.com", "not a real hash")
	if err != nil {
		t.Fatal(err)
	}
	for _, suspend := range []bool{true, false} {
		// b has the key cached, read before the change.
		if got, err := b.KeyUser(ctx, key); err != nil || got.Suspended == suspend {
			t.Fatalf("b before: %+v, %v", got, err)
		}
		if suspend {
			_, err = a.SuspendUser(ctx, u.ID)
		} else {
			_, err = a.UnsuspendUser(ctx, u.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		// b's next read of the epoch, which its watcher makes every
		// second, is made here, so the test waits for no clock.
		if err := b.pollCredentials(ctx); err != nil {
			t.Fatal(err)
		}
		if got, err := b.KeyUser(ctx, key); err != nil || got.Suspended != suspend {
			t.Fatalf("b after suspend=%v: %+v, %v", suspend, got, err)
		}
	}
}
