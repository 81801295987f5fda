package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"shortfleet/provisioning/pgcluster"
	sfsql "shortfleet/sql"
	"shortfleet/sql/codes"
)

func testStore(t *testing.T) *Store {
	t.Helper()
	_, db := pgcluster.StartTestDatabase(t)
	codec, _ := codes.New([]byte("store-test-key-0123456789"))
	s := New(db, codec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(s.Close)
	return s
}

// TestRevokeWinsOverLookupInFlight: a lookup that read a key as live
// before the key was revoked answers with what it read, but does not put
// the key back in the cache the revocation emptied: every lookup after
// the revocation refuses the key. (Once, such a lookup re-filled the
// cache, and the revoked key worked for 30 s more.) The race is run step
// by step: the lookup stops between its read and its cache fill, and the
// key is revoked there.
func TestRevokeWinsOverLookupInFlight(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	u, key, err := s.CreateUser(ctx, "a@example.com", "not a real hash")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListKeys(ctx, u.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v", keys, err)
	}

	read, revoked := make(chan struct{}), make(chan struct{})
	s.afterKeyRead = func() {
		close(read)
		<-revoked
	}
	type result struct {
		u   User
		err error
	}
	inFlight := make(chan result)
	go func() {
		u, err := s.KeyUser(ctx, key)
		inFlight <- result{u, err}
	}()
	<-read // the lookup has read the key, live, and not filled the cache
	if err := s.RevokeKey(ctx, u.ID, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	close(revoked)
	if r := <-inFlight; r.err != nil || r.u.ID != u.ID {
		t.Fatalf("the lookup in flight: %+v, %v; want the user it read", r.u, r.err)
	}
	s.afterKeyRead = nil

	if got, err := s.KeyUser(ctx, key); !errors.Is(err, sfsql.ErrNotFound) {
		t.Fatalf("after the revocation: %+v, %v; want ErrNotFound", got, err)
	}
}

// TestKeyCacheServes: without a revocation between, a lookup fills the
// cache and the next is answered from it (so the test above is about the
// cache): a key revoked behind the store's back still works, until the
// next revocation through the store empties the cache.
func TestKeyCacheServes(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	u, key, err := s.CreateUser(ctx, "a@example.com", "not a real hash")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.KeyUser(ctx, key); err != nil || got.ID != u.ID {
		t.Fatalf("first lookup: %+v, %v", got, err)
	}
	if _, err := s.DB().Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE user_id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.KeyUser(ctx, key); err != nil || got.ID != u.ID {
		t.Fatalf("second lookup, from the cache: %+v, %v", got, err)
	}
	if err := s.RevokeKey(ctx, u.ID, -1); !errors.Is(err, sfsql.ErrNotFound) {
		t.Fatalf("revoking no key: %v", err)
	}
	if _, err := s.KeyUser(ctx, key); !errors.Is(err, sfsql.ErrNotFound) {
		t.Fatalf("after a revocation emptied the cache: %v; want ErrNotFound", err)
	}
}
