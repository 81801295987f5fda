package localfleet_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"shortfleet/provisioning/localfleet"
)

var (
	fleetBuild sync.Once
	fleetErr   error
)

// fleetBinary builds the fleet command into binDir, once, for the tests
// that run it as `make admin` does.
func fleetBinary(t *testing.T) string {
	t.Helper()
	fleetBuild.Do(func() {
		if out, err := exec.Command("go", "build", "-race", "-o", binDir+"/", "shortfleet/provisioning/fleet").CombinedOutput(); err != nil {
			fleetErr = fmt.Errorf("build fleet: %v\n%s", err, out)
		}
	})
	if fleetErr != nil {
		t.Fatal(fleetErr)
	}
	return filepath.Join(binDir, "fleet")
}

// fleetAdmin runs `fleet admin` on f's state folder, as `make admin` does,
// and returns its exit code and output.
func fleetAdmin(t *testing.T, state, email string) (int, string) {
	t.Helper()
	cmd := exec.Command(fleetBinary(t), "admin", "-state", state, "-bin", binDir, email)
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestFleetAdmin: `fleet admin` (make admin) makes a signed-up account an
// admin of a running fleet from its state folder alone, and says so
// clearly when there is no such account or no fleet. And no process of the
// fleet has a secret on its command line, which ps shows to every user.
func TestFleetAdmin(t *testing.T) {
	t.Parallel() // functional, not timed: three at a time (make test -parallel 3), after the timed drills, to keep make test under 20 minutes
	f := startFleet(t, 1)
	signupWithLinks(t, f.PrimaryURL(), "boss@example.com", 0, "")

	t.Run("no secret on a command line", func(t *testing.T) {
		secrets := []string{f.Secrets.PGPassword, f.Secrets.CodeKey, f.Secrets.AdminToken, f.Secrets.VisitorSalt, f.Secrets.CSRFKey}
		for _, a := range append([]*localfleet.App{f.PrimaryApp, f.Mapreduce}, f.Proxies...) {
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", a.Process().Pid()))
			if err != nil {
				t.Fatalf("%s: %v", a.Name, err)
			}
			for _, s := range secrets {
				if strings.Contains(string(cmdline), s) {
					t.Errorf("%s has a secret on its command line: %q", a.Name, strings.ReplaceAll(string(cmdline), "\x00", " "))
				}
			}
		}
	})

	isAdmin := func() bool {
		t.Helper()
		var admin bool
		if err := queryPrimary(f, []any{&admin}, `SELECT is_admin FROM users WHERE email = 'boss@example.com'`); err != nil {
			t.Fatal(err)
		}
		return admin
	}
	if isAdmin() {
		t.Fatal("a new account is an admin already")
	}
	if code, out := fleetAdmin(t, f.StateDir(), "boss@example.com"); code != 0 || !strings.Contains(out, "admin granted") {
		t.Fatalf("fleet admin: exit %d\n%s", code, out)
	}
	if !isAdmin() {
		t.Fatal("fleet admin succeeded but the account is no admin")
	}
	if code, out := fleetAdmin(t, f.StateDir(), "nobody@example.com"); code != 1 || !strings.Contains(out, "sign up first") {
		t.Fatalf("fleet admin of no account: exit %d, want 1 and a message\n%s", code, out)
	}
	if code, out := fleetAdmin(t, t.TempDir(), "boss@example.com"); code != 1 || !strings.Contains(out, "make up") {
		t.Fatalf("fleet admin with no fleet up: exit %d, want 1 and a message\n%s", code, out)
	}
}
