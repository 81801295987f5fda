package localfleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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
	"shortfleet/provisioning/tlscert"
)

// Load balancer ports, on the load balancer's two addresses: <subnet>.4
// for short links, <subnet>.5 for the primary app (a bare-metal balancer
// tells them apart by host name; here the names are addresses).
const (
	PortBalancer      = 8080 // plain HTTP: redirects; the app sends its requests to HTTPS
	PortBalancerTLS   = 8443 // HTTPS, HTTP/2 where the client offers it
	PortBalancerStats = 8404 // /healthz, /stats, /metrics (on <subnet>.4)
)

// HAProxyInstalled reports whether haproxy is on PATH; the fleet puts it in
// front of the proxies where it is.
func HAProxyInstalled() bool {
	_, err := exec.LookPath("haproxy")
	return err == nil
}

// balancerHost is the load balancer's address for short links.
func (f *Fleet) balancerHost() string { return f.cfg.host(4) }

// appHost is the load balancer's address for the primary app.
func (f *Fleet) appHost() string { return f.cfg.host(5) }

// BalancerURL is the load balancer's plain HTTP redirect URL, "" when the
// fleet runs without HAProxy.
func (f *Fleet) BalancerURL() string {
	if !f.balanced {
		return ""
	}
	return "http://" + net.JoinHostPort(f.balancerHost(), strconv.Itoa(PortBalancer))
}

// BalancerTLSURL is the load balancer's HTTPS redirect URL, "" without
// HAProxy.
func (f *Fleet) BalancerTLSURL() string {
	if !f.balanced {
		return ""
	}
	return "https://" + net.JoinHostPort(f.balancerHost(), strconv.Itoa(PortBalancerTLS))
}

// CertFile is the balancer's certificate (chain and key), issued by the
// fleet's CA for both its addresses.
func (f *Fleet) CertFile() string { return f.path("haproxy", "balancer.pem") }

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
		CertFile:  f.CertFile(),
		AppHost:   f.appHost(),
		Apps:      f.appServers(),
		StatsBind: net.JoinHostPort(f.balancerHost(), strconv.Itoa(PortBalancerStats)),
		Log:       "stdout format raw local0 notice",
		Source:    f.balancerHost(),
	}
	for _, h := range []string{f.balancerHost(), f.appHost()} {
		b.Binds = append(b.Binds, net.JoinHostPort(h, strconv.Itoa(PortBalancer)))
		b.TLSBinds = append(b.TLSBinds, net.JoinHostPort(h, strconv.Itoa(PortBalancerTLS)))
	}
	for i := range f.cfg.Proxies {
		b.Servers = append(b.Servers, settings.Server{Name: ProxyID(i), Addr: f.ProxyHost(i), Port: PortRedirect, CheckPort: PortAdmin})
	}
	return h.RenderHAProxy(b)
}

// startHAProxy issues the balancer's certificate if it has none that
// serves, writes the configuration, checks both, starts HAProxy supervised,
// and waits until every proxy and the app are up behind it.
func (f *Fleet) startHAProxy(ctx context.Context) error {
	dir := f.path("haproxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hosts := []string{f.balancerHost(), f.appHost()}
	if issued, err := f.ca.Ensure(f.CertFile(), hosts); err != nil {
		return err
	} else if issued {
		f.logger.Info("balancer certificate issued by the fleet's CA", "file", f.CertFile(), "hosts", hosts)
	}
	if err := tlscert.Check(f.CertFile(), hosts, time.Now()); err != nil {
		return fmt.Errorf("load balancer: %w", err)
	}
	cfg, err := f.HAProxyConfig()
	if err != nil {
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

// WaitBalanced waits until HAProxy reports n proxies and the app up.
func (f *Fleet) WaitBalanced(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		up, err := f.BalancedUp(ctx)
		app, aerr := f.balancedApp(ctx)
		if err == nil && aerr == nil && len(up) >= n && app {
			return nil
		}
		last = errors.Join(err, aerr)
		if last == nil {
			last = fmt.Errorf("%d of %d proxies up, app up: %v", len(up), n, app)
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
	return f.serversUp(ctx, "proxies")
}

// balancedApp reports whether HAProxy sends the app's requests on.
func (f *Fleet) balancedApp(ctx context.Context) (bool, error) {
	up, err := f.serversUp(ctx, "app")
	return len(up) > 0, err
}

// serversUp lists the servers of a backend that HAProxy reports UP.
func (f *Fleet) serversUp(ctx context.Context, backend string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.BalancerStatsURL()+"/stats;csv", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return ParseServersUp(resp.Body, backend)
}

// ParseServersUp reads HAProxy's stats CSV and lists the servers of backend
// whose status is UP.
func ParseServersUp(r io.Reader, backend string) ([]string, error) {
	states, err := ParseServerStates(r, backend)
	var up []string
	for _, s := range states {
		if s.Status == "UP" {
			up = append(up, s.Name)
		}
	}
	return up, err
}

// ServerState is a server of a backend and its status in HAProxy's stats
// ("UP", "DOWN", "UP 1/2" while a check failing counts down, ...).
type ServerState struct{ Name, Status string }

// ParseServerStates reads HAProxy's stats CSV and gives every server of
// backend with its status, in the order of the stats.
func ParseServerStates(r io.Reader, backend string) ([]ServerState, error) {
	var states []ServerState
	sc := bufio.NewScanner(r)
	status := -1
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ",")
		if strings.HasPrefix(fields[0], "# ") {
			fields[0] = strings.TrimPrefix(fields[0], "# ")
			for i, f := range fields {
				if f == "status" {
					status = i
				}
			}
			continue
		}
		if status < 0 {
			return nil, fmt.Errorf("haproxy stats: no header line with a status column")
		}
		if len(fields) > status && fields[0] == backend && fields[1] != "BACKEND" && fields[1] != "FRONTEND" {
			states = append(states, ServerState{fields[1], fields[status]})
		}
	}
	return states, sc.Err()
}

// HAProxy is the load balancer's supervised process, nil without one.
func (f *Fleet) HAProxy() *proc.Process { return f.haproxy }

// appServers are the app's instances as the balancer's app backend lists
// them.
func (f *Fleet) appServers() []settings.Server {
	var s []settings.Server
	for i, h := range f.appHosts() {
		s = append(s, settings.Server{Name: appName(i), Addr: h, Port: PortPrimary, CheckPort: PortPrimary})
	}
	return s
}
