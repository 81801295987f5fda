package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusesEmptyAdminToken starts the real binary, in each of its modes,
// with SHORTFLEET_ADMIN_TOKEN empty or unset: it must exit at once with a
// message naming the variable, not start a daemon or a run that could
// pull nothing (the proxies refuse an empty token too).
func TestRefusesEmptyAdminToken(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "mapreduce")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, "shortfleet/mapreduce").CombinedOutput(); err != nil {
		t.Fatalf("build mapreduce: %v\n%s", err, out)
	}
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
				for _, kv := range os.Environ() {
					if !strings.HasPrefix(kv, "SHORTFLEET_") {
						cmd.Env = append(cmd.Env, kv)
					}
				}
				cmd.Env = append(append(cmd.Env, base...), tok.env...)
				out := run(t, cmd)
				if !strings.Contains(out, "SHORTFLEET_ADMIN_TOKEN must be set") {
					t.Fatalf("exited without naming SHORTFLEET_ADMIN_TOKEN:\n%s", out)
				}
			})
		}
	}
}

// run runs cmd to its end and returns its output. A daemon that reports
// its listener has started, which is itself the failure: it is killed and
// the test fails, rather than waiting for an exit that would not come.
func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "listening on") || strings.Contains(sc.Text(), "daemon started") {
			cmd.Process.Kill()
			<-exited
			t.Fatalf("started with no admin token:\n%s", out.String())
		}
	}
	err := <-exited
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Fatalf("exit %v (code %d), want 1:\n%s", err, code, out.String())
	}
	return out.String()
}
