// Package testhost makes throwaway hosts on this machine for the tests
// that apply the Ansible playbooks for real. A host is a chroot whose root
// is an overlay of this machine's own root (so it has Debian and the
// packages make test installed, and whatever Ansible writes stays its
// own), with /proc, /sys and /dev bound in and a fresh /run and /tmp. It
// listens on a loopback address of its own, and hostinit (the command
// provisioning/hostinit/cmd/hostinit) stands in for systemd, which can't
// be PID 1 here. Ansible reaches it
// through the community.general.chroot connection. Making hosts needs
// root.
package testhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"shortfleet/provisioning/hostinit"
)

// initPath is where a host's init is installed, under its root.
const initPath = "usr/local/sbin/hostinit"

// Host is one throwaway host.
type Host struct {
	Name string
	Addr string // its loopback address
	Root string // its "/", as seen from this machine
	dir  string
	init *exec.Cmd
	done chan struct{}
}

// Make makes a host named name, at addr, in a folder under dir, and starts
// its init from hostinitBin (the hostinit command, which is also its
// systemctl).
func Make(ctx context.Context, dir, name, addr, hostinitBin string) (*Host, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("making a test host needs root (mount, chroot)")
	}
	d := filepath.Join(dir, name)
	h := &Host{Name: name, Addr: addr, Root: filepath.Join(d, "root"), dir: d}
	for _, sub := range []string{"upper", "work", "root"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("lowerdir=/,upperdir=%s,workdir=%s", filepath.Join(d, "upper"), filepath.Join(d, "work"))
	if err := syscall.Mount("overlay", h.Root, "overlay", 0, opts); err != nil {
		return nil, fmt.Errorf("host %s: mount overlay: %w", name, err)
	}
	mounts := []struct {
		src, dst, fstype string
		flags            uintptr
		data             string
	}{
		{"/proc", "proc", "", syscall.MS_BIND | syscall.MS_REC, ""},
		{"/sys", "sys", "", syscall.MS_BIND | syscall.MS_REC, ""},
		{"/dev", "dev", "", syscall.MS_BIND | syscall.MS_REC, ""},
		{"tmpfs", "run", "tmpfs", 0, "mode=755"},
		{"tmpfs", "tmp", "tmpfs", 0, "mode=1777"},
	}
	for _, m := range mounts {
		if err := syscall.Mount(m.src, filepath.Join(h.Root, m.dst), m.fstype, m.flags, m.data); err != nil {
			h.unmount()
			return nil, fmt.Errorf("host %s: mount %s: %w", name, m.dst, err)
		}
	}
	// This host's init is hostinit, and so is its systemctl.
	for _, p := range []string{initPath, "usr/bin/systemctl", "bin/systemctl"} {
		if err := copyFile(hostinitBin, filepath.Join(h.Root, p)); err != nil {
			h.unmount()
			return nil, fmt.Errorf("host %s: install %s: %w", name, p, err)
		}
	}
	// A fresh host enables nothing: the units this machine's packages
	// enabled (its Postgres, HAProxy, Prometheus) are not the host's.
	wants := filepath.Join(h.Root, hostinit.WantsDir)
	if err := os.RemoveAll(wants); err != nil {
		h.unmount()
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	// What tells Ansible's fact gathering the host runs systemd.
	os.MkdirAll(filepath.Join(h.Root, "run/systemd/system"), 0o755)
	os.WriteFile(filepath.Join(h.Root, "etc/hostname"), []byte(name+"\n"), 0o644)
	if err := h.startInit(ctx); err != nil {
		h.unmount()
		return nil, err
	}
	return h, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (h *Host) startInit(ctx context.Context) error {
	log, err := os.OpenFile(filepath.Join(h.dir, "init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("/" + initPath)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: h.Root, Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("host %s: start init: %w", h.Name, err)
	}
	h.init, h.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(h.done)
	}()
	sock := filepath.Join(h.Root, hostinit.Socket)
	for {
		if _, err := os.Stat(sock); err == nil {
			return nil
		}
		select {
		case <-h.done:
			return fmt.Errorf("host %s: init exited (log %s)", h.Name, filepath.Join(h.dir, "init.log"))
		case <-ctx.Done():
			return fmt.Errorf("host %s: init did not start: %w", h.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Command prepares a command to run on the host.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: h.Root}
	return cmd
}

// InitLog is the host's init output (its services' own are under
// /var/log/hostinit on the host).
func (h *Host) InitLog() string { return filepath.Join(h.dir, "init.log") }

// Destroy stops the host's services and init, unmounts it and removes it.
func (h *Host) Destroy() error {
	if h.init != nil {
		h.init.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(90 * time.Second):
			syscall.Kill(-h.init.Process.Pid, syscall.SIGKILL)
			<-h.done
		}
	}
	err := h.unmount()
	if rerr := os.RemoveAll(h.dir); err == nil {
		err = rerr
	}
	return err
}

func (h *Host) unmount() error {
	// Detached at once, with everything mounted below it.
	return syscall.Unmount(h.Root, syscall.MNT_DETACH)
}
