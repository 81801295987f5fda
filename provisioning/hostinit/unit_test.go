package hostinit

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestUnitSpecifiers reads units as systemd names them: Debian's
// etcd.service finds its settings by %p, postgresql@.service its cluster
// by %i.
func TestUnitSpecifiers(t *testing.T) {
	dir := t.TempDir()
	write := func(file, text string) string {
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	etcd := write("etcd.service", "[Service]\nEnvironment=ETCD_NAME=%H\nEnvironmentFile=-/etc/default/%p\nExecStart=/usr/bin/etcd $DAEMON_ARGS --unit %n --bare %N 100%%\n")
	tmpl := write("pg@.service", "[Service]\nEnvironmentFile=/etc/%p/%i.env\nExecStart=/bin/run %I %n %N\n")
	for _, c := range []struct {
		name, path, instance string
		files, exec          []string
	}{
		{"etcd", etcd, "", []string{"-/etc/default/etcd"}, []string{"/usr/bin/etcd", "$DAEMON_ARGS", "--unit", "etcd.service", "--bare", "etcd", "100%"}},
		{"etcd.service", etcd, "", []string{"-/etc/default/etcd"}, []string{"/usr/bin/etcd", "$DAEMON_ARGS", "--unit", "etcd.service", "--bare", "etcd", "100%"}},
		{"pg@15-main.service", tmpl, "15-main", []string{"/etc/pg/15-main.env"}, []string{"/bin/run", "15-main", "pg@15-main.service", "pg@15-main"}},
	} {
		u, err := ParseUnit(c.name, c.path, c.instance)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(u.EnvironmentFiles, c.files) || !slices.Equal(u.ExecStart, c.exec) {
			t.Errorf("%s: EnvironmentFile %q ExecStart %q, want %q %q", c.name, u.EnvironmentFiles, u.ExecStart, c.files, c.exec)
		}
	}
}
