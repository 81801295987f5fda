package sql

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

var dsnSeeds = []string{
	"postgres://shortfleet@db.example:5432/shortfleet?sslmode=disable",
	"postgres://shortfleet:s3cret@db.example/shortfleet",
	"postgresql://u:p%40ss@h1:5432,h2:5433/db?target_session_attrs=read-write&connect_timeout=2",
	"postgres://u@h/db?password=s3cret",
	"postgres://u@h/db?pass%77ord=s3cret",
	"postgres://u@h/db?sslpassword=key",
	"postgres://u:@h/db",
	"postgres://[::1]:5432/db",
	"postgres://[a?x]/db?password=s",
	"postgres://h/db@x",
	"postgres:///shortfleet",
	"host=db.example user=shortfleet dbname=shortfleet",
	"host=db.example password=s3cret dbname=shortfleet",
	"host=h password='s3 cr\\'et' dbname=d",
	"host=h password = x",
	"host=h password=''",
	"host=h\\",
	"host='unterminated",
	"password",
	"",
}

// FuzzDSNHasPassword: whenever pgx finds a password in a connection
// string itself (the environment and ~/.pgpass are shut out here),
// DSNHasPassword says so: a -dsn flag never lets one through. And a string
// it passes takes a password from DSNWithPassword: pgx then reads that
// password and the same hosts, database and user as before.
func FuzzDSNHasPassword(f *testing.F) {
	for _, s := range dsnSeeds {
		f.Add(s, "pw:/@? '\\%x")
	}
	f.Setenv("PGPASSWORD", "")
	f.Setenv("PGPASSFILE", filepath.Join(f.TempDir(), "none"))
	f.Setenv("PGSERVICEFILE", filepath.Join(f.TempDir(), "none"))
	f.Setenv("PGSERVICE", "")
	f.Fuzz(func(t *testing.T, dsn, password string) {
		if strings.Contains(dsn, "passfile") || strings.Contains(dsn, "service") {
			return // a password read from a file the string names is no secret on the command line
		}
		has := DSNHasPassword(dsn)
		before, err := pgconn.ParseConfig(dsn)
		if err != nil {
			return
		}
		if before.Password != "" && !has {
			t.Fatalf("%q holds password %q; DSNHasPassword says none", dsn, before.Password)
		}
		if has || password == "" || strings.IndexByte(password, 0) >= 0 {
			return
		}
		with, err := DSNWithPassword(dsn, password)
		if err != nil {
			t.Fatalf("DSNWithPassword(%q): %v", dsn, err)
		}
		after, err := pgconn.ParseConfig(with)
		if err != nil {
			t.Fatalf("%q with a password is %q, which pgx refuses: %v", dsn, with, err)
		}
		if after.Password != password || after.Host != before.Host || after.Port != before.Port ||
			after.Database != before.Database || after.User != before.User || len(after.Fallbacks) != len(before.Fallbacks) {
			t.Fatalf("%q with a password is %q: pgx reads %+v, want password %q and %+v", dsn, with, *after, password, *before)
		}
		if !DSNHasPassword(with) {
			t.Fatalf("%q: DSNHasPassword says no password", with)
		}
	})
}

func TestDSNSourceResolve(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pwFile, emptyFile := file("pw", "file secret\n"), file("empty", "\n")
	for _, c := range []struct {
		name    string
		src     DSNSource
		want    string
		wantErr string
	}{
		{"flag without password", DSNSource{Flag: "postgres://u@h/d"}, "postgres://u@h/d", ""},
		{"flag with password", DSNSource{Flag: "postgres://u:pw@h/d"}, "", "-dsn holds a password"},
		{"flag with password in the query", DSNSource{Flag: "postgres://u@h/d?password=pw", Password: "x"}, "", "-dsn holds a password"},
		{"keyword flag with password", DSNSource{Flag: "host=h password=pw"}, "", "-dsn holds a password"},
		{"flag wins over the environment", DSNSource{Flag: "postgres://u@h/d", Env: "postgres://v:pw@g/e"}, "postgres://u@h/d", ""},
		{"environment may hold the password", DSNSource{Env: "postgres://u:pw@h/d"}, "postgres://u:pw@h/d", ""},
		{"password from the environment", DSNSource{Flag: "postgres://u@h/d", Password: "p@ss/w:rd"}, "postgres://u:p%40ss%2Fw%3Ard@h/d", ""},
		{"password from a file", DSNSource{Env: "postgres://h/d", PasswordFile: pwFile}, "postgres://:file%20secret@h/d", ""},
		{"keyword pairs take the password first", DSNSource{Flag: "host=h dbname=d", Password: "it's"}, `password='it\'s' host=h dbname=d`, ""},
		{"two passwords", DSNSource{Env: "postgres://u:pw@h/d", Password: "other"}, "", "keep one"},
		{"two password sources", DSNSource{Env: "postgres://u@h/d", Password: "a", PasswordFile: pwFile}, "", "keep one"},
		{"empty password file", DSNSource{Env: "postgres://u@h/d", PasswordFile: emptyFile}, "", "is empty"},
		{"missing password file", DSNSource{Env: "postgres://u@h/d", PasswordFile: filepath.Join(dir, "none")}, "", "read -db-password-file"},
		{"no database", DSNSource{Password: "pw"}, "", "must name the primary database"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.src.Resolve()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, c.wantErr)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
