// Package bintest builds the project's binaries and runs them, for the
// tests that start the real programs as the fleet does (built with -race,
// given only the environment the test sets). It lives in provisioning,
// beside the other test infrastructure the binaries share, because no
// binary may import another's packages.
package bintest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

var (
	mu    sync.Mutex
	dir   string              // this process's build folder, made by the first Build
	built = map[string]*bin{} // package path -> its build
)

// bin is one package's build, shared by every test of the process.
type bin struct {
	once sync.Once
	path string
	err  error
}

// Build builds the main package pkg (an import path such as
// "shortfleet/proxy") with the race detector and returns the binary's path.
// It builds each package once per test process, however many tests ask,
// into a temporary folder that Cleanup removes: a package whose tests call
// Build has a TestMain that calls Main, or Cleanup after m.Run.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	b := built[pkg]
	if b == nil {
		b = &bin{}
		built[pkg] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.path, b.err = build(pkg) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// build builds pkg into a folder of its own, so that two packages whose
// paths end alike do not overwrite each other, and the binary keeps its
// package's name (which its -h output shows).
func build(pkg string) (string, error) {
	mu.Lock()
	if dir == "" {
		d, err := os.MkdirTemp("", "shortfleet-bin-")
		if err != nil {
			mu.Unlock()
			return "", fmt.Errorf("make build folder: %w", err)
		}
		dir = d
	}
	sub, err := os.MkdirTemp(dir, "")
	mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("make build folder: %w", err)
	}
	out := filepath.Join(sub, path.Base(pkg))
	if msg, err := exec.Command("go", "build", "-race", "-o", out, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", pkg, err, msg)
	}
	return out, nil
}

// Main runs the tests of m, removes what they built, and exits with their
// status: a package whose tests call Build has
//
//	func TestMain(m *testing.M) { bintest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes every binary Build has built in this process. TestMain
// calls it once the tests have run; a later Build builds again.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
	dir, built = "", map[string]*bin{}
}

// CleanEnv returns this process's environment without any SHORTFLEET_
// setting or libpq (PG) variable, plus env: the binary sees only what the
// test gives it, not what happens to be set where the tests run.
func CleanEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHORTFLEET_") && !strings.HasPrefix(kv, "PG") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// RunToExit runs cmd, which is expected to stop by itself (a refusal at
// start-up, a one-shot command), and returns its output (stdout and
// stderr, as written) and exit code; the caller judges the code. Should a
// line holding one of started appear, the process got past where it should
// have stopped, which is itself the failure: it is killed rather than
// waited for, and the test fails.
func RunToExit(t testing.TB, cmd *exec.Cmd, started ...string) (output string, exitCode int) {
	t.Helper()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		for _, s := range started {
			if strings.Contains(sc.Text(), s) {
				cmd.Process.Kill()
				pr.Close()
				<-exited
				t.Fatalf("got past its start-up checks:\n%s", out.String())
			}
		}
	}
	if err := sc.Err(); err != nil {
		// A line too long to scan: stop reading, and let the process end
		// rather than block on a pipe no one reads.
		cmd.Process.Kill()
		pr.Close()
		<-exited
		t.Fatalf("read the output of %s: %v\n%s", cmd.Path, err, out.String())
	}
	<-exited
	return out.String(), cmd.ProcessState.ExitCode()
}

// Chromium finds Debian's Chromium (make test installs it), or $CHROMIUM,
// for the tests that drive a browser.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatal("Chromium not found: make test installs Debian's chromium package")
	return ""
}

// ChromiumOptions are the allocator options of a test's headless
// Chromium: Debian's (Chromium), without the sandbox (the tests run as
// root) or a GPU, fetching nothing in the background, with a profile of
// the test's own and a window of width by height; extra come after.
func ChromiumOptions(t testing.TB, width, height int, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height))
	return append(opts, extra...)
}

// LogWriter writes a logger's lines into the test's log.
type LogWriter struct{ T testing.TB }

func (w LogWriter) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// DumpLogs writes the end of each log of a local fleet's state folder
// (its logs/*.log) into the test's log, for a test that failed.
func DumpLogs(t testing.TB, state string) {
	logs, _ := filepath.Glob(filepath.Join(state, "logs", "*.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		t.Logf("==== %s ====\n%s", filepath.Base(l), data)
	}
}
