package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run runs bin with args and returns its exit status and output.
func run(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestRoles builds the command alone (no other binary of the project) and
// runs it in both roles outside a test host: named systemctl it is
// systemctl (daemon-reload succeeds, a start finds no init to ask);
// under its own name it is the init, which takes no arguments. The init
// itself serving units is TestHostAndInit (provisioning/testhost).
func TestRoles(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "hostinit")
	if out, err := exec.Command("go", "build", "-o", bin, "shortfleet/provisioning/hostinit/cmd/hostinit").CombinedOutput(); err != nil {
		t.Fatalf("build hostinit: %v\n%s", err, out)
	}
	systemctl := filepath.Join(dir, "systemctl")
	if err := os.Symlink(bin, systemctl); err != nil {
		t.Fatal(err)
	}
	if code, out := run(t, systemctl, "daemon-reload"); code != 0 || out != "" {
		t.Fatalf("systemctl daemon-reload: exit %d %q, want 0 and nothing", code, out)
	}
	if code, out := run(t, systemctl, "start", "nothing.service"); code != 1 || !strings.Contains(out, "System has not been booted with hostinit") {
		t.Fatalf("systemctl start without an init: exit %d %q, want 1 and no init", code, out)
	}
	if code, out := run(t, bin, "daemon-reload"); code != 2 || !strings.Contains(out, "usage: hostinit") {
		t.Fatalf("hostinit daemon-reload: exit %d %q, want 2 and the usage", code, out)
	}
}
