package localfleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"shortfleet/provisioning/proc"
	"shortfleet/provisioning/settings"
)

// Etcd is one member of the fleet's etcd, Patroni's store.
type Etcd struct {
	Name   string
	Host   string
	proc   *proc.Process
	logger *slog.Logger
	spec   proc.Spec
}

// ClientAddr is the member's client address, host:port.
func (e *Etcd) ClientAddr() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(settings.LoadPatroni().EtcdClient))
}

// Stop stops the member (a clean shutdown); Start runs it again.
func (e *Etcd) Stop() error {
	if e.proc == nil {
		return nil
	}
	err := e.proc.Stop()
	e.proc = nil
	// etcd shuts down on SIGTERM and then raises it again on itself: an
	// exit by that signal is its clean stop.
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return err
}

// Kill SIGKILLs the member and leaves it down: its host died.
func (e *Etcd) Kill() {
	if e.proc != nil {
		e.proc.Kill()
		e.proc = nil
	}
}

// Start runs the member again after Stop or Kill, and waits until it is
// healthy (which needs a quorum of the three).
func (e *Etcd) Start(ctx context.Context) error {
	p, err := proc.Start(e.spec, e.logger)
	if err != nil {
		return err
	}
	e.proc = p
	return e.WaitHealthy(ctx)
}

// WaitHealthy waits until the member answers /health with true: it is in
// a cluster with a leader.
func (e *Etcd) WaitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		if last = e.health(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd %s not healthy: %w (last: %v)", e.Name, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (e *Etcd) health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.ClientAddr()+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		return fmt.Errorf("etcd %s: %d %s", e.Name, resp.StatusCode, body)
	}
	return nil
}

// startEtcd starts etcd's three members, each on its own host (waitEtcd
// waits for them). A state folder's members keep their data, so a fleet
// started again finds Patroni's keys where it left them.
func (f *Fleet) startEtcd(ctx context.Context) error {
	s := settings.LoadPatroni()
	var initial []string
	for i, h := range f.etcdHosts() {
		initial = append(initial, fmt.Sprintf("etcd-%d=http://%s", i+1, net.JoinHostPort(h, strconv.Itoa(s.EtcdPeer))))
	}
	f.Etcd = nil
	for i, h := range f.etcdHosts() {
		name := fmt.Sprintf("etcd-%d", i+1)
		dir := f.path("etcd", name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		peer := "http://" + net.JoinHostPort(h, strconv.Itoa(s.EtcdPeer))
		client := "http://" + net.JoinHostPort(h, strconv.Itoa(s.EtcdClient))
		e := &Etcd{Name: name, Host: h, logger: f.logger}
		e.spec = proc.Spec{
			Name: name,
			Command: func() *exec.Cmd {
				return exec.Command("etcd", "--name", name, "--data-dir", dir,
					"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
					"--listen-client-urls", client, "--advertise-client-urls", client,
					"--initial-cluster", strings.Join(initial, ","),
					"--initial-cluster-state", "new", "--initial-cluster-token", "shortfleet-"+f.cfg.Subnet,
					"--log-level", "warn")
			},
			LogPath:           f.path("logs", name+".log"),
			Restart:           true,
			ParentDeathSignal: syscall.SIGTERM,
		}
		p, err := proc.Start(e.spec, f.logger)
		if err != nil {
			return err
		}
		e.proc = p
		f.Etcd = append(f.Etcd, e)
	}
	return nil
}

// waitEtcd waits until etcd's members are healthy. The fleet starts the
// primary host's Patroni meanwhile: it waits for etcd by itself, and its
// own start-up (a Python interpreter) overlaps etcd's first election.
func (f *Fleet) waitEtcd(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, e := range f.Etcd {
		g.Go(func() error { return e.WaitHealthy(gctx) })
	}
	return g.Wait()
}

// EtcdEndpoints are etcd's client addresses, host:port.
func (f *Fleet) EtcdEndpoints() []string {
	var out []string
	for _, h := range f.etcdHosts() {
		out = append(out, net.JoinHostPort(h, strconv.Itoa(settings.LoadPatroni().EtcdClient)))
	}
	return out
}
