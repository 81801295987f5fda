package main

import (
	"bufio"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"shortfleet/provisioning/bintest"
	"shortfleet/provisioning/pgcluster"
)

func TestMain(m *testing.M) { bintest.Main(m) }

// splitDSN returns a test cluster's URL without its password, and the
// password.
func splitDSN(t *testing.T, c *pgcluster.Cluster) (string, string) {
	t.Helper()
	u, err := url.Parse(c.DSN("shortfleet"))
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	return u.String(), pw
}

var listenRE = regexp.MustCompile(`msg="listening on (http://[^"\s]+)"`)

// serve starts the binary as a server and reports whether it got as far
// as listening (migrations applied: the database answered), with its
// output; a server that listens is then stopped with SIGTERM (how it
// stops is not this test's business).
func serve(t *testing.T, env []string, args ...string) (bool, string) {
	t.Helper()
	bin := bintest.Build(t, "shortfleet/primary")
	cmd := exec.Command(bin, append([]string{"-listen", "127.0.0.1:0", "-insecure-cookies"}, args...)...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	listening := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if listenRE.MatchString(sc.Text()) {
			listening = true
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	cmd.Wait()
	return listening, out.String()
}

// TestDSNPasswordNotOnCommandLine starts the real binary: a -dsn holding a
// password is refused before anything else, with a message saying where
// the password goes; the password in SHORTFLEET_DB_PASSWORD, in a
// -db-password-file or in SHORTFLEET_DSN works, and without it the
// database refuses (so the password given is the one that let it in).
func TestDSNPasswordNotOnCommandLine(t *testing.T) {
	c, _ := pgcluster.StartTestDatabase(t)
	withPW := c.DSN("shortfleet")
	noPW, pw := splitDSN(t, c)
	pwFile := filepath.Join(t.TempDir(), "db-password")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := "SHORTFLEET_CODE_KEY=00112233445566778899aabbccddeeff"

	ok, out := serve(t, bintest.CleanEnv(key), "-dsn", withPW)
	if ok || !strings.Contains(out, "-dsn holds a password") || !strings.Contains(out, "SHORTFLEET_DB_PASSWORD") {
		t.Fatalf("-dsn with a password: listening %v, want refused with a clear message:\n%s", ok, out)
	}
	if strings.Contains(out, pw) {
		t.Fatalf("the refusal shows the password:\n%s", out)
	}
	if ok, out := serve(t, bintest.CleanEnv(key), "-dsn", noPW); ok || !strings.Contains(out, "password authentication failed") {
		t.Fatalf("-dsn without any password: listening %v, want the database to refuse:\n%s", ok, out)
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"SHORTFLEET_DB_PASSWORD", []string{key, "SHORTFLEET_DB_PASSWORD=" + pw}, []string{"-dsn", noPW}},
		{"-db-password-file", []string{key}, []string{"-dsn", noPW, "-db-password-file", pwFile}},
		{"SHORTFLEET_DSN with the password", []string{key, "SHORTFLEET_DSN=" + withPW}, nil},
		{"SHORTFLEET_DSN and SHORTFLEET_DB_PASSWORD", []string{key, "SHORTFLEET_DSN=" + noPW, "SHORTFLEET_DB_PASSWORD=" + pw}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if ok, out := serve(t, bintest.CleanEnv(c.env...), c.args...); !ok {
				t.Fatalf("did not start:\n%s", out)
			}
		})
	}

	help, _ := exec.Command(bintest.Build(t, "shortfleet/primary"), "-h").CombinedOutput()
	if !regexp.MustCompile(`-dsn string\s+postgres:// URL of the primary database, without its password`).Match(help) ||
		!strings.Contains(string(help), "-db-password-file") {
		t.Fatalf("-h does not say where the password goes:\n%s", help)
	}
}

// TestGrantAdminNeedsOnlyTheDatabase runs grant-admin with nothing set but
// SHORTFLEET_DSN: no code key, no CSRF key, no other setting.
func TestGrantAdminNeedsOnlyTheDatabase(t *testing.T) {
	c, db := pgcluster.StartTestDatabase(t)
	if _, err := db.Exec(t.Context(), `INSERT INTO users (email, password_hash) VALUES ('boss@example.com', 'x')`); err != nil {
		t.Fatal(err)
	}
	grant := func(email string) (int, string) {
		cmd := exec.Command(bintest.Build(t, "shortfleet/primary"), "grant-admin", email)
		cmd.Env = []string{"SHORTFLEET_DSN=" + c.DSN("shortfleet")}
		out, code := bintest.RunToExit(t, cmd)
		return code, out
	}
	if code, out := grant("Boss@Example.com"); code != 0 || !strings.Contains(out, "admin granted") {
		t.Fatalf("grant-admin: exit %d\n%s", code, out)
	}
	var admin bool
	if err := db.QueryRow(t.Context(), `SELECT is_admin FROM users WHERE email = 'boss@example.com'`).Scan(&admin); err != nil || !admin {
		t.Fatalf("is_admin %v, %v after grant-admin", admin, err)
	}
	if code, out := grant("nobody@example.com"); code != 1 || !strings.Contains(out, "sign up first") {
		t.Fatalf("grant-admin of no account: exit %d, want 1 and a message\n%s", code, out)
	}
}
