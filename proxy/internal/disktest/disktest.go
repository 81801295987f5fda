// Package disktest makes log folders that fail the way disks do, for the
// proxy's tests: a small filesystem filled to its last byte, and a folder
// that cannot be written. Each helper checks that the failure is real before
// it returns, so a test cannot pass without meeting it. Mounting needs root;
// `make test` runs as root in CI.
package disktest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Small mounts a tmpfs of size bytes on a new folder and unmounts it when
// the test ends. It skips the test unless it runs as root.
func Small(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root; make test runs as root in CI")
	}
	dir := t.TempDir()
	run(t, "mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir)
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Fill fills the filesystem holding dir to its last byte, checks a small
// write then fails with ENOSPC, and returns the function that frees the
// space again.
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	block := bytes.Repeat([]byte{'x'}, 4096)
	for {
		if _, err = f.Write(block); err != nil {
			break
		}
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
	}
	if err := probe(dir); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("%s is not full: a small write gives %v", dir, err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}
}

// Unwritable makes dir refuse writes and returns the function that makes it
// writable again. As root, whom permissions do not stop, dir is bind-mounted
// on itself read-only; otherwise its write permission is removed. Either
// way it checks that creating a file in dir fails.
func Unwritable(t testing.TB, dir string) (writable func()) {
	t.Helper()
	if os.Geteuid() == 0 {
		run(t, "mount", "--bind", dir, dir)
		run(t, "mount", "-o", "remount,bind,ro", dir)
		mounted := true
		writable = func() {
			t.Helper()
			if mounted {
				run(t, "umount", "-l", dir) // lazily: a retrying writer may hold the read-only view open
				mounted = false
			}
		}
		t.Cleanup(func() {
			if mounted {
				exec.Command("umount", "-l", dir).Run()
			}
		})
	} else {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		writable = func() {
			t.Helper()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
	}
	if err := probe(dir); err == nil {
		t.Fatalf("%s is still writable", dir)
	}
	return writable
}

// probe writes a small file in dir and removes it.
func probe(dir string) error {
	p := filepath.Join(dir, "probe")
	err := os.WriteFile(p, []byte("probe\n"), 0o644)
	os.Remove(p)
	return err
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v %s", name, args, err, out)
	}
}
