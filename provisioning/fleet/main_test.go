package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shortfleet/provisioning/bintest"
	"shortfleet/provisioning/tlscert"
)

func TestMain(m *testing.M) { bintest.Main(m) }

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
	const usage = "usage: fleet up|down|admin|check-cert [flags]\n"
	for _, tc := range []struct {
		bin  string
		args []string
		code int
		want string // in the output
	}{
		{bin, nil, 2, usage},
		{bin, []string{"init"}, 2, usage},
		{bin, []string{"sideways", "-state", state}, 2, usage},
		// Gone with issue 20: Patroni promotes (promote_replica.yml).
		{bin, []string{"promote", "-candidates", "127.0.0.1:5432"}, 2, usage},
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

// TestCheckCert runs `fleet check-cert` as the haproxy role does, on an
// ACME client's two files (the chain, the key) and on HAProxy's one:
// a good certificate passes; an expired one, one that does not cover a
// host, or a key of another certificate exits 1 with tlscert's reason on
// stderr, which is what the operator reads in the failed Ansible task.
func TestCheckCert(t *testing.T) {
	bin := bintest.Build(t, "shortfleet/provisioning/fleet")
	dir := t.TempDir()
	ca, err := tlscert.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"s.example.com", "app.example.com", "192.0.2.5"}
	issue := func(name string, hosts []string, validity time.Duration) (one, chain, key string) {
		one = filepath.Join(dir, name+".pem")
		if err := ca.Issue(one, hosts, validity); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(one)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(data, []byte("-----BEGIN PRIVATE KEY"))
		chain, key = filepath.Join(dir, name+"-fullchain.pem"), filepath.Join(dir, name+"-privkey.pem")
		if err := os.WriteFile(chain, data[:i], 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, data[i:], 0o600); err != nil {
			t.Fatal(err)
		}
		return one, chain, key
	}
	goodOne, good, goodKey := issue("good", hosts, 24*time.Hour)
	_, expired, expiredKey := issue("expired", hosts, -time.Minute)
	_, _, otherKey := issue("other", hosts, 24*time.Hour)
	all := strings.Join(hosts, ",")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // in stdout
		stderr string // in stderr
	}{
		{"good", []string{"-cert", good, "-key", goodKey, "-hosts", all}, 0, "ok: " + good + " covers s.example.com, app.example.com, 192.0.2.5", ""},
		{"good, one file", []string{"-cert", goodOne, "-hosts", all}, 0, "ok: ", ""},
		{"expired", []string{"-cert", expired, "-key", expiredKey, "-hosts", all}, 1, "", "expired on"},
		{"wrong host", []string{"-cert", good, "-key", goodKey, "-hosts", "s.example.com,www.example.com"}, 1, "", "does not cover www.example.com"},
		{"wrong address", []string{"-cert", good, "-key", goodKey, "-hosts", "192.0.2.6"}, 1, "", "does not cover 192.0.2.6"},
		{"key of another certificate", []string{"-cert", good, "-key", otherKey, "-hosts", all}, 1, "", "private key does not match public key"},
		{"no such key", []string{"-cert", good, "-key", filepath.Join(dir, "absent.pem"), "-hosts", all}, 1, "", "tls key: open"},
		{"no hosts", []string{"-cert", good, "-key", goodKey}, 2, "", "usage: fleet check-cert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"check-cert"}, tc.args...)...)
			cmd.Env = bintest.CleanEnv()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
				t.Fatal(err)
			}
			code := cmd.ProcessState.ExitCode()
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q in stdout, %q in stderr", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
			if code == 0 && stderr.Len() > 0 {
				t.Errorf("stderr on success: %q", stderr.String())
			}
		})
	}
}
