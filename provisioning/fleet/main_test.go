package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerbs builds the command and runs what needs no fleet: a word that
// is no verb (init and systemctl are hostinit's now, not fleet's) gets
// the usage line naming every verb, admin without an email its own usage
// line, and down with no fleet running says so and succeeds. Whatever
// its name, the binary is fleet.
func TestVerbs(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fleet")
	if out, err := exec.Command("go", "build", "-o", bin, "shortfleet/provisioning/fleet").CombinedOutput(); err != nil {
		t.Fatalf("build fleet: %v\n%s", err, out)
	}
	systemctl := filepath.Join(dir, "systemctl")
	if err := os.Symlink(bin, systemctl); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	const usage = "usage: fleet up|down|admin|promote [flags]\n"
	for _, tc := range []struct {
		bin  string
		args []string
		code int
		want string // in the output
	}{
		{bin, nil, 2, usage},
		{bin, []string{"init"}, 2, usage},
		{bin, []string{"sideways", "-state", state}, 2, usage},
		{systemctl, []string{"daemon-reload"}, 2, usage},
		{bin, []string{"admin", "-state", state}, 2, "usage: fleet admin [-state .fleet] [-bin bin] EMAIL\n"},
		{bin, []string{"down", "-state", state}, 0, "no fleet is running"},
	} {
		cmd := exec.Command(tc.bin, tc.args...)
		out, err := cmd.CombinedOutput()
		if err != nil && cmd.ProcessState == nil {
			t.Fatal(err)
		}
		if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s %q: exit %d %q, want %d and %q", filepath.Base(tc.bin), tc.args, code, out, tc.code, tc.want)
		}
	}
}
