package testhost

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"shortfleet/provisioning/pgcluster"
)

// buildHostinit builds the hostinit command (init and systemctl of a test
// host).
func buildHostinit(t *testing.T) string {
	t.Helper()
	dir := pgcluster.TestDir(t)
	out, err := exec.Command("go", "build", "-o", dir+"/hostinit", "shortfleet/provisioning/hostinit/cmd/hostinit").CombinedOutput()
	if err != nil {
		t.Fatalf("build hostinit: %v\n%s", err, out)
	}
	return dir + "/hostinit"
}

// TestHostAndInit makes a host and runs a unit through its systemctl the
// way Ansible's systemd module does: enable, start, show, restart after a
// crash, reload, stop; what the unit wrote stays inside the host.
func TestHostAndInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making test hosts needs root; CI runs as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, err := pgcluster.FreeLoopback(7777)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Make(ctx, pgcluster.TestDir(t), "host-a", addr, buildHostinit(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(h.Root, "var/log/hostinit/*.log"))
			for _, l := range append(logs, h.InitLog()) {
				data, _ := os.ReadFile(l)
				t.Logf("==== %s\n%s", l, data)
			}
		}
		if err := h.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
	}()
	unit := `[Unit]
Description=test service

[Service]
User=nobody
Environment="GREETING=hello there"
EnvironmentFile=-/etc/default/missing
EnvironmentFile=/etc/default/greeter
ExecStart=/bin/sh -c 'trap "echo reloaded >> /tmp/greeting" USR1; echo "$GREETING $NAME" > /tmp/greeting; while :; do sleep 0.1; done'
ExecReload=/bin/kill -USR1 $MAINPID
Restart=on-failure

[Install]
WantedBy=multi-user.target
`
	must(t, os.WriteFile(filepath.Join(h.Root, "etc/systemd/system/greeter.service"), []byte(unit), 0o644))
	must(t, os.WriteFile(filepath.Join(h.Root, "etc/default/greeter"), []byte("# a comment\nNAME=\"world\"\n"), 0o644))
	systemctl := func(args ...string) (string, int) {
		out, err := h.Command(ctx, "systemctl", args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	show := func() map[string]string {
		out, code := systemctl("show", "greeter")
		if code != 0 {
			t.Fatalf("show: %d %s", code, out)
		}
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, _ := strings.Cut(l, "=")
			m[k] = v
		}
		return m
	}
	if out, code := systemctl("is-enabled", "greeter"); code == 0 {
		t.Fatalf("is-enabled before enable: %s", out)
	}
	if out, code := systemctl("enable", "--now", "greeter.service"); code != 0 {
		t.Fatalf("enable --now: %d %s", code, out)
	}
	st := show()
	if st["LoadState"] != "loaded" || st["ActiveState"] != "active" || st["UnitFileState"] != "enabled" || st["MainPID"] == "0" {
		t.Fatalf("after enable --now: %v", st)
	}
	greeting := filepath.Join(h.Root, "tmp/greeting")
	waitFile(t, ctx, greeting, "hello there world\n")
	if _, err := os.Stat("/tmp/greeting"); err == nil {
		t.Fatal("the host's /tmp leaked onto this machine")
	}
	// Runs as the unit's user.
	data, _ := os.ReadFile("/proc/" + st["MainPID"] + "/status")
	if !strings.Contains(string(data), "Uid:\t65534") {
		t.Fatalf("service does not run as nobody:\n%s", data)
	}
	// A crash is restarted (Restart=on-failure).
	var pid int
	for _, c := range st["MainPID"] {
		pid = pid*10 + int(c-'0')
	}
	must(t, os.Remove(greeting))
	must(t, syscall.Kill(pid, syscall.SIGKILL))
	deadline := time.Now().Add(30 * time.Second)
	for st = show(); st["NRestarts"] != "1" || st["ActiveState"] != "active"; st = show() {
		if time.Now().After(deadline) {
			t.Fatalf("not restarted after a crash: %v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitFile(t, ctx, greeting, "hello there world\n")
	if out, code := systemctl("reload", "greeter"); code != 0 {
		t.Fatalf("reload: %d %s", code, out)
	}
	waitFile(t, ctx, greeting, "hello there world\nreloaded\n")
	if out, code := systemctl("stop", "greeter"); code != 0 {
		t.Fatalf("stop: %d %s", code, out)
	}
	if out, code := systemctl("is-active", "greeter"); code != 3 || strings.TrimSpace(out) != "inactive" {
		t.Fatalf("is-active after stop: %d %q", code, out)
	}
	// A forking daemon from a template unit, as Debian's postgresql@.service.
	forker := `[Service]
Type=forking
ExecStart=-/bin/sh -c 'sleep 1000 > /dev/null 2>&1 & echo $! > /run/forker-%i.pid'
ExecStop=/bin/kill $MAINPID
PIDFile=/run/forker-%i.pid
`
	must(t, os.WriteFile(filepath.Join(h.Root, "lib/systemd/system/forker@.service"), []byte(forker), 0o644))
	if out, code := systemctl("start", "forker@a"); code != 0 {
		t.Fatalf("start forker@a: %d %s", code, out)
	}
	if out, code := systemctl("is-active", "forker@a.service"); code != 0 {
		t.Fatalf("forker@a not active: %d %s", code, out)
	}
	if out, code := systemctl("stop", "forker@a"); code != 0 {
		t.Fatalf("stop forker@a: %d %s", code, out)
	}
	if out, code := systemctl("is-active", "forker@a"); code != 3 {
		t.Fatalf("forker@a still active after stop: %d %s", code, out)
	}
	if out, code := systemctl("show", "nothing-here"); code != 0 || !strings.Contains(out, "LoadState=not-found") {
		t.Fatalf("show of a missing unit: %d %s", code, out)
	}
}

func waitFile(t *testing.T, ctx context.Context, path, want string) {
	t.Helper()
	for {
		data, _ := os.ReadFile(path)
		if string(data) == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s holds %q, want %q", path, data, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
