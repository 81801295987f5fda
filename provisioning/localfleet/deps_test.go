package localfleet_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDepsFleetInstallsOnlyTheFleet runs provisioning/deps.sh on a PATH that
// has none of the tools it looks for: `deps.sh fleet` (make up) would
// install HAProxy, Prometheus and Alertmanager and nothing only the tests
// use; `deps.sh test` (make test) would install those too.
func TestDepsFleetInstallsOnlyTheFleet(t *testing.T) {
	bare := t.TempDir()
	// Besides what it looks for, the script uses a few of coreutils' and
	// sed (the country database's part).
	for _, tool := range []string{"ls", "getent", "dpkg", "id", "dirname", "sed", "sha256sum", "cut"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bare, tool)); err != nil {
			t.Fatal(err)
		}
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	wouldInstall := func(mode string) []string {
		cmd := exec.Command(sh, script, mode)
		cmd.Env = []string{"PATH=" + bare, "DEPS_DRY_RUN=1"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("deps.sh %s: %v: %s", mode, err, out)
		}
		first, _, _ := strings.Cut(string(out), "\n")
		return strings.Fields(strings.TrimPrefix(first, "would install:"))
	}
	onlyTests := []string{"chromium", "ansible", "ansible-lint", "wrk", "nginx-light"}
	fleetOnes := []string{"haproxy", "nodejs", "npm", "prometheus", "prometheus-alertmanager"}
	fleet := wouldInstall("fleet")
	for _, pkg := range fleetOnes {
		if !slices.Contains(fleet, pkg) {
			t.Errorf("deps.sh fleet would install %v, want %s among them", fleet, pkg)
		}
	}
	for _, pkg := range onlyTests {
		if slices.Contains(fleet, pkg) {
			t.Errorf("deps.sh fleet would install %s, which only the tests use (%v)", pkg, fleet)
		}
	}
	test := wouldInstall("test")
	for _, pkg := range append(onlyTests, fleetOnes...) {
		if !slices.Contains(test, pkg) {
			t.Errorf("deps.sh test would install %v, want %s among them", test, pkg)
		}
	}
}
