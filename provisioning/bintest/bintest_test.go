package bintest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// say is the program these tests build: see testdata/say.
const say = "shortfleet/provisioning/bintest/testdata/say"

func TestMain(m *testing.M) { Main(m) }

// TestBuild: the binary is built once however often it is asked for, is
// named after its package, and runs; Cleanup removes it, and a later Build
// builds it again.
func TestBuild(t *testing.T) {
	bin := Build(t, say)
	if again := Build(t, say); again != bin {
		t.Fatalf("second Build: %s, want the first's %s", again, bin)
	}
	if filepath.Base(bin) != "say" {
		t.Fatalf("binary %s, want it named say", bin)
	}
	if out, err := exec.Command(bin, "0", "hello").CombinedOutput(); err != nil || string(out) != "hello\n" {
		t.Fatalf("run: %v %q", err, out)
	}
	Cleanup()
	if _, err := os.Stat(bin); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after Cleanup: stat %s: %v, want it gone", bin, err)
	}
	rebuilt := Build(t, say)
	if _, err := os.Stat(rebuilt); err != nil {
		t.Fatalf("Build after Cleanup: %v", err)
	}
}

// TestCleanEnv: no SHORTFLEET_ or PG variable of this process is passed
// on, everything else is, and the test's own settings come last.
func TestCleanEnv(t *testing.T) {
	t.Setenv("SHORTFLEET_DSN", "postgres://leaked")
	t.Setenv("PGPASSWORD", "leaked")
	t.Setenv("BINTEST_KEPT", "kept")
	env := CleanEnv("SHORTFLEET_ADMIN_TOKEN=given", "PGHOST=given")
	for _, kv := range env {
		if strings.Contains(kv, "leaked") {
			t.Errorf("CleanEnv passes on %s", kv)
		}
	}
	if !slices.Contains(env, "BINTEST_KEPT=kept") {
		t.Errorf("CleanEnv drops BINTEST_KEPT")
	}
	if n := len(env); n < 2 || env[n-2] != "SHORTFLEET_ADMIN_TOKEN=given" || env[n-1] != "PGHOST=given" {
		t.Errorf("CleanEnv does not end with the given settings: %q", env)
	}
}

// TestRunToExit: the output of both streams, in the order written, and the
// exit code, whatever it is; a line that merely resembles a started line
// does not count.
func TestRunToExit(t *testing.T) {
	bin := Build(t, say)
	for _, c := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"0"}, "", 0},
		{[]string{"1", "refused: no token", "bye"}, "refused: no token\nbye\n", 1},
		{[]string{"3", "a", "b", "c", "not listening"}, "a\nb\nc\nnot listening\n", 3},
	} {
		out, code := RunToExit(t, exec.Command(bin, c.args...), "started", "listening on")
		if out != c.out || code != c.code {
			t.Errorf("say %q: %q, exit %d; want %q, exit %d", c.args, out, code, c.out, c.code)
		}
	}
}

// TestRunToExitKillsWhatStarted runs TestRunToExitHelper in a test process
// of its own, since the test it runs must fail: a program that prints a
// started line and stays is killed, and the test fails saying so, rather
// than waiting forever.
func TestRunToExitKillsWhatStarted(t *testing.T) {
	if os.Getenv("BINTEST_HELPER") != "" {
		t.Skip("run by the outer test only")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunToExitHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "BINTEST_HELPER=1")
	out, err := cmd.CombinedOutput()
	_, line, _ := strings.Cut(string(out), "say pid ")
	pid, perr := strconv.Atoi(strings.Fields(line + " x")[0])
	if perr != nil {
		t.Fatalf("the helper did not report the program's pid:\n%s", out)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the program (pid %d) still runs: %v", pid, err)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "--- FAIL: TestRunToExitHelper") ||
		!strings.Contains(string(out), "got past its start-up checks:") || strings.Contains(string(out), "RunToExit returned") {
		t.Fatalf("helper test: %v, want it to fail having killed the program:\n%s", err, out)
	}
}

// TestRunToExitHelper is run by TestRunToExitKillsWhatStarted, and fails.
func TestRunToExitHelper(t *testing.T) {
	if os.Getenv("BINTEST_HELPER") == "" {
		t.Skip("run by TestRunToExitKillsWhatStarted only")
	}
	cmd := exec.Command(Build(t, say), "hang", "warming up", "listening on http://127.0.0.1:1")
	t.Cleanup(func() { t.Logf("say pid %d", cmd.Process.Pid) })
	RunToExit(t, cmd, "daemon started", "listening on")
	t.Log("RunToExit returned")
}
