package pgcluster

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	sfsql "shortfleet/sql"
)

// TestDir makes a folder for a test's clusters that the postgres user can
// traverse (t.TempDir is 0700 and root's when tests run as root) and removes
// it when the test ends.
func TestDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shortfleet-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// FreeLoopback returns a random 127.x.y.z address on which port is free, so
// tests running at once each get hosts of their own.
func FreeLoopback(port int) (string, error) {
	for range 100 {
		addr := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 2+rand.IntN(250))
		l, err := net.Listen("tcp", net.JoinHostPort(addr, fmt.Sprint(port)))
		if err == nil {
			l.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no free loopback address for port %d", port)
}

// RandomSecret returns n random bytes, hex encoded.
func RandomSecret(n int) string {
	b := make([]byte, n)
	if _, err := crand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// TestSettings make test clusters quick to start and small; they keep the
// write-ahead log and replication exactly as in production (full-page
// writes too, which pg_rewind needs to rejoin a former primary).
var TestSettings = map[string]string{
	"fsync":                 "off",
	"shared_buffers":        "32MB",
	"max_connections":       "100",
	"max_wal_senders":       "10",
	"max_replication_slots": "10",
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// StartTestPrimary starts a primary cluster for a test in its own folder and
// on its own loopback address, and stops it when the test ends.
func StartTestPrimary(t testing.TB) *Cluster {
	t.Helper()
	return startTest(t, "primary", TestDir(t), nil, func(ctx context.Context, c *Cluster) error { return c.Init(ctx) })
}

// StartTestReplica starts a hot standby of primary for a test, streaming
// from a replication slot named after it, and stops it when the test ends.
func StartTestReplica(t testing.TB, primary *Cluster, name string) *Cluster {
	t.Helper()
	return StartTestReplicaWith(t, primary, name, nil)
}

// StartTestReplicaWith is StartTestReplica with extra Postgres settings.
func StartTestReplicaWith(t testing.TB, primary *Cluster, name string, settings map[string]string) *Cluster {
	t.Helper()
	dir := filepath.Join(filepath.Dir(primary.cfg.Dir), name)
	return startTest(t, name, dir, settings, func(ctx context.Context, c *Cluster) error {
		c.cfg.Password = primary.cfg.Password
		return c.BaseBackup(ctx, primary, "slot_"+hex.EncodeToString([]byte(name)))
	})
}

func startTest(t testing.TB, name, dir string, extra map[string]string, create func(context.Context, *Cluster) error) *Cluster {
	t.Helper()
	addr, err := FreeLoopback(5432)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != name {
		dir = filepath.Join(dir, name)
	}
	settings := maps.Clone(TestSettings)
	maps.Copy(settings, extra)
	c, err := New(Config{
		Name: name, Dir: dir, Addr: addr, Port: 5432,
		Password: RandomSecret(12), Settings: settings,
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := create(ctx, c); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "postgres.log")
	if err := c.Start(ctx, logPath); err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("%v\n%s", err, log)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
	})
	return c
}

// StartTestDatabase starts a primary for a test with the shortfleet
// database created and migrated, and returns it with a pool on that
// database, closed when the test ends.
func StartTestDatabase(t testing.TB) (*Cluster, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	c := StartTestPrimary(t)
	if err := c.CreateDatabase(ctx, "shortfleet"); err != nil {
		t.Fatal(err)
	}
	if err := sfsql.MigrateUp(c.DSN("shortfleet"), testLogger(t)); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, c.DSN("shortfleet"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return c, pool
}
