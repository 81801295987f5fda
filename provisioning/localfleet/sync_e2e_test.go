package localfleet_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"shortfleet/provisioning/bintest"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/patroni"
	"shortfleet/provisioning/pgcluster"
)

// TestSynchronousByDefault: a fleet's primary waits for a standby at each
// commit (Patroni's synchronous mode) unless Config.Asynchronous says
// otherwise, and the setting follows the config when a state folder is
// started again. Patroni's mode is not strict: with its only standby
// down, Patroni stops naming it and the primary commits alone (what an
// operator gets: creation goes on; README.md decision 9), and the standby
// back is synchronous again. A fleet started again with a migration
// pending still comes up.
func TestSynchronousByDefault(t *testing.T) {
	t.Parallel() // functional, not timed: three at a time (make test -parallel 3), after the timed drills, to keep make test under 20 minutes
	logger := slog.New(slog.NewTextHandler(bintest.LogWriter{T: t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
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
			bintest.DumpLogs(t, cfg.StateDir)
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
		if got := syncStates(); !slices.Equal(got, states) && (len(got) > 0 || len(states) > 0) {
			t.Fatalf("%s: the standbys' sync_state %v, want %v", when, got, states)
		}
		signupWithLinks(t, f.PrimaryURL(), "sync-"+pgcluster.RandomSecret(6)+"@example.com", 1, "https://example.com/sync/%d")
	}

	start("first start")
	want("by default", "sync")

	// With its one standby down, creation goes on: Patroni stops naming it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := f.Replicas[0].Stop(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, func() bool {
		cl, err := patroni.GetCluster(ctx, f.Primary.RESTAddr())
		return err == nil && cl.Sync() == ""
	})
	want("standby down", []string{}...)
	if err := f.StartDB(ctx, f.Replicas[0]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, func() bool {
		cl, err := patroni.GetCluster(ctx, f.Primary.RESTAddr())
		return err == nil && cl.Sync() == "proxy-01" && slices.Equal(syncStates(), []string{"sync"})
	})

	// A pending migration: the schema reverted, then the fleet started
	// again, which migrates it up before the standbys start.
	down := f.Command(ctx, "primary", "migrate", "down")
	if out, err := down.CombinedOutput(); err != nil {
		t.Fatalf("primary migrate down: %v\n%s", err, out)
	}
	stop()
	start("started again with a migration pending")
	want("started again", "sync")
	stop()

	cfg.Asynchronous = true
	start("started again asynchronous")
	want("started again with Asynchronous", "async")
}
