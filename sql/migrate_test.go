package sql_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"shortfleet/provisioning/pgcluster"
	sfsql "shortfleet/sql"
)

func tables(t *testing.T, c *pgcluster.Cluster) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, "shortfleet")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'
		AND tablename <> 'schema_migrations' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestMigrationsUpDown applies every migration to a fresh cluster, reverts
// them all, and applies them again.
func TestMigrationsUpDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := pgcluster.StartTestPrimary(t)
	if err := c.CreateDatabase(ctx, "shortfleet"); err != nil {
		t.Fatal(err)
	}
	dsn := c.DSN("shortfleet")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	latest, err := sfsql.LatestMigration()
	if err != nil || latest == 0 {
		t.Fatalf("latest migration = %d, %v", latest, err)
	}
	want := []string{"aliases", "api_keys", "clicks_hourly", "ingested_segments", "link_changes", "link_daily", "links", "link_tags", "mapreduce_runs", "sessions", "users"}

	for round := range 2 {
		if err := sfsql.MigrateUp(dsn, logger); err != nil {
			t.Fatalf("round %d up: %v", round, err)
		}
		v, dirty, err := sfsql.MigrationVersion(dsn)
		if err != nil || dirty || v != latest {
			t.Fatalf("round %d: version %d dirty %v err %v, want %d clean", round, v, dirty, err, latest)
		}
		got := tables(t, c)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Fatalf("round %d: tables %v lack %s", round, got, w)
			}
		}
		// Up again is a no-op, not an error.
		if err := sfsql.MigrateUp(dsn, logger); err != nil {
			t.Fatalf("round %d second up: %v", round, err)
		}
		if err := sfsql.MigrateDown(dsn, logger); err != nil {
			t.Fatalf("round %d down: %v", round, err)
		}
		if got := tables(t, c); len(got) != 0 {
			t.Fatalf("round %d: after down, tables %v remain", round, got)
		}
		if v, _, err := sfsql.MigrationVersion(dsn); err != nil || v != 0 {
			t.Fatalf("round %d: after down, version %d, %v", round, v, err)
		}
	}
}

// TestLinkByID reads a link and misses one that does not exist.
func TestLinkByID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, conn := pgcluster.StartTestDatabase(t)
	var id int64
	err := conn.QueryRow(ctx, `WITH u AS (INSERT INTO users (email, password_hash) VALUES ('a@example.com', 'x') RETURNING id)
		INSERT INTO links (user_id, target, redirect_type) SELECT id, 'https://example.com/', 307 FROM u RETURNING id`).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	l, err := sfsql.LinkByID(ctx, conn, id)
	if err != nil {
		t.Fatal(err)
	}
	if l.Target != "https://example.com/" || l.RedirectType != 307 || l.Disabled {
		t.Fatalf("got %+v", l)
	}
	if _, err := sfsql.LinkByID(ctx, conn, id+1); err != sfsql.ErrNotFound {
		t.Fatalf("missing link: got %v, want ErrNotFound", err)
	}
}
