package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"shortfleet/provisioning/bintest"
	"shortfleet/provisioning/pgcluster"
)

func TestMain(m *testing.M) { bintest.Main(m) }

// TestDSNPasswordNotOnCommandLine runs the real binary once: a -dsn
// holding a password is refused with a message saying where it goes; the
// password in SHORTFLEET_DB_PASSWORD, a -db-password-file or SHORTFLEET_DSN
// lets the run through, and none at all does not.
func TestDSNPasswordNotOnCommandLine(t *testing.T) {
	bin := bintest.Build(t, "shortfleet/mapreduce")
	dir := t.TempDir()
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
	token := "SHORTFLEET_ADMIN_TOKEN=a-token-no-proxy-is-asked-for"
	once := func(env []string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-once"}, args...)...)
		cmd.Env = bintest.CleanEnv(append(env, salt, token)...)
		out, code := bintest.RunToExit(t, cmd)
		return code, out
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

// TestRefusesEmptyAdminToken starts the real binary, in each of its modes,
// with SHORTFLEET_ADMIN_TOKEN empty or unset: it must exit at once with a
// message naming the variable, not start a daemon or a run that could
// pull nothing (the proxies refuse an empty token too).
func TestRefusesEmptyAdminToken(t *testing.T) {
	bin := bintest.Build(t, "shortfleet/mapreduce")
	// Nothing listens at these addresses: the refusal must come before
	// either is tried.
	base := []string{"SHORTFLEET_DSN=postgres://shortfleet@127.0.0.1:1/shortfleet?connect_timeout=1",
		"SHORTFLEET_VISITOR_SALT=0123456789abcdef0123", "SHORTFLEET_PROXIES=http://127.0.0.1:1"}
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"daemon", []string{"-admin-listen", "127.0.0.1:0", "-schedule", "@every 1000h"}},
		{"once", []string{"-once"}},
		{"recompute", []string{"-recompute", "2026-11-22"}},
	} {
		for _, tok := range []struct {
			name string
			env  []string
		}{{"empty", []string{"SHORTFLEET_ADMIN_TOKEN="}}, {"unset", nil}} {
			t.Run(mode.name+"/"+tok.name, func(t *testing.T) {
				cmd := exec.Command(bin, mode.args...)
				cmd.Env = bintest.CleanEnv(append(slices.Clone(base), tok.env...)...)
				// A daemon that reports its listener has started, which is
				// itself the failure: RunToExit kills it and fails the test.
				out, code := bintest.RunToExit(t, cmd, "listening on", "daemon started")
				if code != 1 {
					t.Fatalf("exit code %d, want 1:\n%s", code, out)
				}
				if !strings.Contains(out, "SHORTFLEET_ADMIN_TOKEN must be set") {
					t.Fatalf("exited without naming SHORTFLEET_ADMIN_TOKEN:\n%s", out)
				}
			})
		}
	}
}
