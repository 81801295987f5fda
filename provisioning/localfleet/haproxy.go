package localfleet

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"shortfleet/provisioning/proc"
	"shortfleet/provisioning/settings"
)

// Load balancer ports, on the load balancer host (<subnet>.4).
const (
	PortBalancer      = 8080 // redirects, spread over the proxies
	PortBalancerStats = 8404 // /healthz, /stats, /metrics
)

// HAProxyInstalled reports whether haproxy is on PATH; the fleet puts it in
// front of the proxies where it is.
func HAProxyInstalled() bool {
	_, err := exec.LookPath("haproxy")
	return err == nil
}

// balancerHost is the load balancer's address.
func (f *Fleet) balancerHost() string { return f.cfg.host(4) }

// BalancerURL is the load balancer's redirect URL, "" when the fleet runs
// without HAProxy.
func (f *Fleet) BalancerURL() string {
	if f.haproxy == nil {
		return ""
	}
	return "http://" + net.JoinHostPort(f.balancerHost(), strconv.Itoa(PortBalancer))
}

// BalancerStatsURL is the load balancer's monitoring origin.
func (f *Fleet) BalancerStatsURL() string {
	return "http://" + net.JoinHostPort(f.balancerHost(), strconv.Itoa(PortBalancerStats))
}

// HAProxyConfig renders the load balancer's configuration from the shared
// settings (provisioning/settings/haproxy.json), as the Ansible role does.
func (f *Fleet) HAProxyConfig() (string, error) {
	h := settings.LoadHAProxy()
	if f.cfg.Balance != "" {
		h.Balance = f.cfg.Balance
	}
	h = h.FitDescriptors()
	b := settings.Balancer{
		Bind:      net.JoinHostPort(f.balancerHost(), strconv.Itoa(PortBalancer)),
		StatsBind: net.JoinHostPort(f.balancerHost(), strconv.Itoa(PortBalancerStats)),
		Log:       "stdout format raw local0 notice",
		Source:    f.balancerHost(),
	}
	for i := range f.cfg.Proxies {
		b.Servers = append(b.Servers, settings.Server{Name: ProxyID(i), Addr: f.ProxyHost(i), Port: PortRedirect, CheckPort: PortAdmin})
	}
	return h.RenderHAProxy(b)
}

// startHAProxy writes the configuration, checks it with haproxy -c, starts
// HAProxy supervised, and waits until every proxy is up behind it.
func (f *Fleet) startHAProxy(ctx context.Context) error {
	cfg, err := f.HAProxyConfig()
	if err != nil {
		return err
	}
	dir := f.path("haproxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "haproxy", "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		return fmt.Errorf("haproxy -c %s: %w: %s", path, err, out)
	}
	p, err := proc.Start(proc.Spec{
		Name:              "haproxy",
		Command:           func() *exec.Cmd { return exec.Command("haproxy", "-W", "-db", "-f", path) },
		LogPath:           f.path("logs", "haproxy.log"),
		Restart:           true,
		StopSignal:        syscall.SIGUSR1, // soft stop: finish what is under way
		StopTimeout:       10 * time.Second,
		ParentDeathSignal: syscall.SIGTERM,
	}, f.logger)
	if err != nil {
		return err
	}
	f.haproxy = p
	return f.WaitBalanced(ctx, f.cfg.Proxies)
}

// WaitBalanced waits until HAProxy reports n proxies up.
func (f *Fleet) WaitBalanced(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		up, err := f.BalancedUp(ctx)
		if err == nil && len(up) >= n {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("%d of %d proxies up", len(up), n)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("haproxy: proxies not up: %v (log: %s)", last, f.path("logs", "haproxy.log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// BalancedUp lists the proxies HAProxy now sends traffic to.
func (f *Fleet) BalancedUp(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.BalancerStatsURL()+"/stats;csv", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var up []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		// pxname,svname,...,status (18th field)
		fields := strings.Split(sc.Text(), ",")
		if len(fields) > 17 && fields[0] == "proxies" && strings.HasPrefix(fields[1], "proxy-") && fields[17] == "UP" {
			up = append(up, fields[1])
		}
	}
	return up, sc.Err()
}

// HAProxy is the load balancer's supervised process, nil without one.
func (f *Fleet) HAProxy() *proc.Process { return f.haproxy }
