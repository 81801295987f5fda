package localfleet_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/pgcluster"
)

// TestSynchronousByDefault: a fleet's primary waits for a standby at each
// commit unless Config.Asynchronous says otherwise (with its one standby
// down, a creation waits until the standby is back: what an operator
// gets), and the setting follows the config when a state folder is
// started again. A fleet started again
// with a migration pending still comes up: the migration runs before the
// standbys, which synchronous_standby_names, kept in the primary's
// postgresql.auto.conf, would have it wait for.
func TestSynchronousByDefault(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := localfleet.Config{StateDir: pgcluster.TestDir(t), BinDir: binDir, Subnet: freeSubnet(t), Proxies: 1,
		NoBalancer: true, Schedule: "@every 1000h", PGSettings: pgcluster.TestSettings}
	var f *localfleet.Fleet
	t.Cleanup(func() {
		if f != nil {
			f.Stop()
		}
	})
	start := func(what string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var err error
		f, err = localfleet.Start(ctx, cfg, logger)
		if err != nil {
			dumpLogs(t, cfg.StateDir)
			t.Fatalf("%s: %v", what, err)
		}
	}
	stop := func() {
		t.Helper()
		if err := f.Stop(); err != nil {
			t.Fatal(err)
		}
		f = nil
	}
	// syncStates is each standby's sync_state as the primary sees it.
	syncStates := func() []string {
		t.Helper()
		ctx := context.Background()
		conn, err := f.Primary.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT sync_state FROM pg_stat_replication`)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	want := func(when string, states ...string) {
		t.Helper()
		if got := syncStates(); !slices.Equal(got, states) {
			t.Fatalf("%s: the standbys' sync_state %v, want %v", when, got, states)
		}
		signupWithLinks(t, f.PrimaryURL(), "sync-"+pgcluster.RandomSecret(6)+"@example.com", 1, "https://example.com/sync/%d")
	}

	start("first start")
	want("by default", "quorum")

	// With its one standby down, a creation waits for it (its commit shows
	// as waiting on SyncRep) and is acknowledged once the standby is back.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	key, _ := signupWithLinks(t, f.PrimaryURL(), "standby-down@example.com", 0, "")
	if err := f.Replicas[0].Stop(); err != nil {
		t.Fatal(err)
	}
	answered := make(chan string, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", f.PrimaryURL()+"/api/links", strings.NewReader(`{"target":"https://example.com/waits"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- err.Error()
			return
		}
		resp.Body.Close()
		answered <- resp.Status
	}()
	db, err := f.Primary.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	waitUntil(t, ctx, func() bool {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'`).Scan(&n)
		return err == nil && n > 0
	})
	select {
	case a := <-answered:
		t.Fatalf("a creation with the standby down answered %s while its commit waited", a)
	default:
	}
	if err := f.Replicas[0].Start(ctx, filepath.Join(cfg.StateDir, "logs", "postgres-proxy-01-again.log")); err != nil {
		t.Fatal(err)
	}
	if a := <-answered; a != "201 Created" {
		t.Fatalf("the waiting creation, once the standby was back: %s, want 201 Created", a)
	}

	first := f
	stop()
	t.Cleanup(func() { first.Primary.Stop() })

	// A pending migration: the schema reverted with the primary alone,
	// its commits not waiting for the standby that is down.
	if err := first.StartPrimaryDB(ctx); err != nil {
		t.Fatal(err)
	}
	down := first.Command(ctx, "primary", "migrate", "down")
	down.Env = append(down.Env, "SHORTFLEET_DSN="+first.Primary.DSN(localfleet.Database)+"&synchronous_commit=local")
	if out, err := down.CombinedOutput(); err != nil {
		t.Fatalf("primary migrate down: %v\n%s", err, out)
	}
	if err := first.Primary.Stop(); err != nil {
		t.Fatal(err)
	}
	start("started again with a migration pending")
	want("started again", "quorum")
	stop()

	cfg.Asynchronous = true
	start("started again asynchronous")
	want("started again with Asynchronous", "async")
}
