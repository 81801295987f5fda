// Package fleettest starts a local fleet for a test: the one start the
// end-to-end tests of provisioning/localfleet and provisioning/monitoring
// share.
package fleettest

import (
	"context"
	"log/slog"
	"maps"
	"testing"
	"time"

	"shortfleet/provisioning/bintest"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/pgcluster"
)

// Start starts a local fleet from cfg and stops it when the test ends,
// filling in what cfg leaves empty: a state folder the postgres user can
// enter, a free subnet, a schedule that never fires, and segments that
// seal only at a stop unless cfg's proxy flags say; pgcluster's test
// settings go under cfg's own Postgres settings. cfg.BinDir is the
// caller's. If the start fails, or the test does, the fleet's logs are
// written to the test's log.
func Start(t *testing.T, cfg localfleet.Config) *localfleet.Fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(bintest.LogWriter{T: t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if cfg.StateDir == "" {
		cfg.StateDir = pgcluster.TestDir(t)
	}
	if cfg.Subnet == "" {
		s, err := localfleet.FreeSubnet()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Subnet = s
	}
	if cfg.Schedule == "" {
		cfg.Schedule = "@every 1000h"
	}
	pg := maps.Clone(pgcluster.TestSettings)
	maps.Copy(pg, cfg.PGSettings)
	cfg.PGSettings = pg
	cfg.ProxyArgs = append([]string{"-seal-age", "1000h"}, cfg.ProxyArgs...)
	f, err := localfleet.Start(ctx, cfg, logger)
	if err != nil {
		bintest.DumpLogs(t, cfg.StateDir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Stop(); err != nil {
			t.Errorf("stop fleet: %v", err)
		}
		if t.Failed() {
			bintest.DumpLogs(t, cfg.StateDir)
		}
	})
	return f
}
