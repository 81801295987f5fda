package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"shortfleet/provisioning/pgcluster"
)

// TestDSNPasswordNotOnCommandLine runs the real binary once: a -dsn
// holding a password is refused with a message saying where it goes; the
// password in SHORTFLEET_DB_PASSWORD, a -db-password-file or SHORTFLEET_DSN
// lets the run through, and none at all does not.
func TestDSNPasswordNotOnCommandLine(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "mapreduce")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, "shortfleet/mapreduce").CombinedOutput(); err != nil {
		t.Fatalf("build mapreduce: %v\n%s", err, out)
	}
	c, _ := pgcluster.StartTestDatabase(t)
	withPW := c.DSN("shortfleet")
	u, err := url.Parse(withPW)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	noPW := u.String()
	pwFile := filepath.Join(dir, "db-password")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	salt := "SHORTFLEET_VISITOR_SALT=0123456789abcdef0123"
	once := func(env []string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-once"}, args...)...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "SHORTFLEET_") && !strings.HasPrefix(kv, "PG") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, append(env, salt)...)
		out, err := cmd.CombinedOutput()
		if err != nil && cmd.ProcessState == nil {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}

	code, out := once(nil, "-dsn", withPW)
	if code != 1 || !strings.Contains(out, "-dsn holds a password") || !strings.Contains(out, "SHORTFLEET_DB_PASSWORD") {
		t.Fatalf("-dsn with a password: exit %d, want 1 and a clear message:\n%s", code, out)
	}
	if strings.Contains(out, pw) {
		t.Fatalf("the refusal shows the password:\n%s", out)
	}
	if code, out := once(nil, "-dsn", noPW); code == 0 || !strings.Contains(out, "password authentication failed") {
		t.Fatalf("-dsn without any password: exit %d, want the database to refuse:\n%s", code, out)
	}
	for i, c := range []struct {
		env  []string
		args []string
	}{
		{[]string{"SHORTFLEET_DB_PASSWORD=" + pw}, []string{"-dsn", noPW}},
		{nil, []string{"-dsn", noPW, "-db-password-file", pwFile}},
		{[]string{"SHORTFLEET_DSN=" + withPW}, nil},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if code, out := once(c.env, c.args...); code != 0 || !strings.Contains(out, "run done") {
				t.Fatalf("env %q, args %q: exit %d\n%s", c.env, c.args, code, out)
			}
		})
	}

	help, _ := exec.Command(bin, "-h").CombinedOutput()
	if !regexp.MustCompile(`-dsn string\s+postgres:// URL of the primary database, without its password`).Match(help) ||
		!strings.Contains(string(help), "-db-password-file") {
		t.Fatalf("-h does not say where the password goes:\n%s", help)
	}
}
