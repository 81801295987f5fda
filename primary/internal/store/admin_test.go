package store

import (
	"context"
	"io"
	"log/slog"
	"strings"
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

// TestLinkCreatedWhileSuspendedIsHeld: a link a suspended account's
// request creates (one let in a moment before the suspension) is held
// like the account's other links, and released with them.
func TestLinkCreatedWhileSuspendedIsHeld(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	u, _, err := s.CreateUser(ctx, "a@example.com", "not a real hash")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SuspendUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	// Both creation paths: the group-commit writer and a transaction of
	// links with an alias.
	plain, err := s.CreateLink(ctx, u.ID, NewLink{Target: "https://example.com/a"})
	if err != nil {
		t.Fatal(err)
	}
	aliased, err := s.CreateLink(ctx, u.ID, NewLink{Target: "https://example.com/b", Alias: "held-alias"})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []Link{plain, aliased} {
		got, err := s.GetLink(ctx, u.ID, l.Code)
		if err != nil || !got.Disabled {
			t.Fatalf("link %s created while suspended: %+v, %v", l.Code, got, err)
		}
	}
	if n, err := s.UnsuspendUser(ctx, u.ID); err != nil || n != 2 {
		t.Fatalf("unsuspend released %d links, %v; want 2", n, err)
	}
	for _, l := range []Link{plain, aliased} {
		if got, err := s.GetLink(ctx, u.ID, l.Code); err != nil || got.Disabled {
			t.Fatalf("link %s after unsuspending: %+v, %v", l.Code, got, err)
		}
	}
}

// TestRevocationReachesEveryInstance: a key revoked, or an account
// deleted, through one app instance is refused by another instance that
// had the key cached, at its next read of the credential epoch, not when
// its cache entry expires 30 s later.
func TestRevocationReachesEveryInstance(t *testing.T) {
	a := testStore(t)
	b := New(a.db, a.codec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer b.Close()
	ctx := context.Background()
	for _, how := range []string{"revoke the key", "delete the account"} {
		u, key, err := a.CreateUser(ctx, strings.ReplaceAll(how, " ", "-")+"@example.com", "not a real hash")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.KeyUser(ctx, key); err != nil {
			t.Fatalf("%s: b before: %v", how, err)
		}
		if how == "revoke the key" {
			keys, err := a.ListKeys(ctx, u.ID)
			if err != nil || len(keys) != 1 {
				t.Fatalf("keys %v, %v", keys, err)
			}
			err = a.RevokeKey(ctx, u.ID, keys[0].ID)
		} else {
			_, err = a.DeleteAccount(ctx, u.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := b.pollCredentials(ctx); err != nil {
			t.Fatal(err)
		}
		if got, err := b.KeyUser(ctx, key); err == nil {
			t.Fatalf("%s: b still accepts the key: %+v", how, got)
		}
	}
}
