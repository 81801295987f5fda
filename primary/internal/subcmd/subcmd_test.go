package subcmd

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"shortfleet/provisioning/pgcluster"
	sfsql "shortfleet/sql"
)

// TestLookup: the subcommands are found by name, and any other word is
// no subcommand (the primary serves, as it always has).
func TestLookup(t *testing.T) {
	for _, name := range []string{"migrate", "grant-admin"} {
		if c, ok := Lookup(name); !ok || c.Name != name {
			t.Errorf("Lookup(%q) = %+v, %v", name, c, ok)
		}
	}
	for _, name := range []string{"", "serve", "Migrate", "grant"} {
		if c, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) found %s", name, c.Name)
		}
	}
}

// TestUsage: wrong arguments exit 2 with the command's own usage line,
// before the database is tried (the address here reaches nothing).
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"migrate", nil, "usage: primary [flags] migrate up|down|version\n"},
		{"migrate", []string{"sideways"}, "usage: primary [flags] migrate up|down|version\n"},
		{"grant-admin", nil, "usage: primary [flags] grant-admin EMAIL\n"},
		{"grant-admin", []string{"  "}, "usage: primary [flags] grant-admin EMAIL\n"},
	} {
		c, _ := Lookup(tc.name)
		var stdout, stderr bytes.Buffer
		code := c.Run("postgres://nobody@127.0.0.1:1/none?connect_timeout=1", tc.args, &stdout, &stderr, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if code != 2 || stderr.String() != tc.want || stdout.Len() != 0 {
			t.Errorf("%s %q: exit %d, stderr %q, stdout %q; want 2 and %q", tc.name, tc.args, code, stderr.String(), stdout.String(), tc.want)
		}
	}
}

// TestMigrate runs migrate against a real database: version prints the
// schema's version, down takes it to none, up brings it back.
func TestMigrate(t *testing.T) {
	c, _ := pgcluster.StartTestDatabase(t)
	dsn := c.DSN("shortfleet")
	want, _, err := sfsql.MigrationVersion(dsn)
	if err != nil || want == 0 {
		t.Fatalf("the test database is at version %d, %v", want, err)
	}
	var logs bytes.Buffer
	run := func(verb string) (int, string) {
		t.Helper()
		m, _ := Lookup("migrate")
		var stdout, stderr bytes.Buffer
		code := m.Run(dsn, []string{verb}, &stdout, &stderr, slog.New(slog.NewTextHandler(&logs, nil)))
		if stderr.Len() != 0 {
			t.Fatalf("migrate %s wrote %q to stderr", verb, stderr.String())
		}
		return code, stdout.String()
	}
	if code, out := run("version"); code != 0 || out != fmt.Sprintf("version %d dirty false\n", want) {
		t.Fatalf("migrate version: exit %d, %q; want version %d", code, out, want)
	}
	if code, _ := run("down"); code != 0 {
		t.Fatalf("migrate down: exit %d\n%s", code, logs.String())
	}
	if v, _, err := sfsql.MigrationVersion(dsn); err != nil || v != 0 {
		t.Fatalf("after migrate down: version %d, %v", v, err)
	}
	if code, _ := run("up"); code != 0 {
		t.Fatalf("migrate up: exit %d\n%s", code, logs.String())
	}
	if v, _, err := sfsql.MigrationVersion(dsn); err != nil || v != want {
		t.Fatalf("after migrate up: version %d, %v; want %d", v, err, want)
	}
}
