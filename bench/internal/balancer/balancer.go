// Package balancer runs HAProxy for bench/cmd/lbbench, rendered from the
// shared settings (provisioning/settings, haproxy.json) with only the
// servers, binds and balance differing between runs, and holds that
// driver's pure parts: the configuration issue 19 replaced, the proxies'
// cache counters summed over a run, and the headline names.
package balancer

import (
	"context"
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

	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/settings"
)

// Ports HAProxy binds on its address, as the local fleet's balancer does.
const (
	PortHTTP  = 8080
	PortHTTPS = 8443
	PortStats = 8404
)

// Setup is one HAProxy of the benchmark.
type Setup struct {
	Dir  string // haproxy.cfg and haproxy.log
	Host string // address HAProxy binds: HTTP, HTTPS and stats
	// Source is the address connections to the backends come from: the
	// address the proxies trust (-trusted-proxies), as the fleet's
	// balancer's is.
	Source   string
	CertFile string // chain and key for the HTTPS bind
	// Balance overrides haproxy.json's balance ("roundrobin",
	// "uri-consistent"); empty keeps it.
	Balance string
	Servers []settings.Server
	// Before renders the configuration issue 19 replaced (see Before).
	Before bool
}

// Render returns haproxy.cfg for s: the shared settings, as the local
// fleet and the Ansible role render them, with s's binds and servers and
// no app backend (the benchmark sends short links only).
func Render(s Setup) (string, error) {
	h := settings.LoadHAProxy()
	if s.Balance != "" {
		h.Balance = s.Balance
	}
	h = h.FitDescriptors()
	b := settings.Balancer{
		Binds:     []string{net.JoinHostPort(s.Host, strconv.Itoa(PortHTTP))},
		TLSBinds:  []string{net.JoinHostPort(s.Host, strconv.Itoa(PortHTTPS))},
		CertFile:  s.CertFile,
		StatsBind: net.JoinHostPort(s.Host, strconv.Itoa(PortStats)),
		Log:       "stdout format raw local0 notice", // as the local fleet's
		Source:    s.Source,
		Servers:   s.Servers,
	}
	cfg, err := h.RenderHAProxy(b)
	if err != nil || !s.Before {
		return cfg, err
	}
	return Before(cfg)
}

// Before rewrites a rendered haproxy.cfg into the configuration issue 19
// replaced, for the before/after figure: the client's address went to the
// proxies in a PROXY protocol v2 header on every server connection
// (send-proxy-v2 on the default-server of both backends of proxies),
// which makes each connection private
// to one client connection, with http-reuse safe, and no X-Forwarded-For,
// X-Forwarded-Proto or X-Client-Port headers. It edits the text rather
// than keeping the old template so that every other setting is today's:
// the figure is of those lines alone. A line it expects and does not find
// is an error, so a change to the template cannot make "before" silently
// equal "after".
func Before(cfg string) (string, error) {
	lines := strings.Split(cfg, "\n")
	var out []string
	var reuse, server, dropped int
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "http-reuse "):
			out = append(out, "    http-reuse safe")
			reuse++
		case strings.HasPrefix(t, "default-server ") && strings.Contains(t, " check"):
			out = append(out, l+" send-proxy-v2")
			server++
		case t == "option forwardfor",
			strings.HasPrefix(t, "http-request set-header X-Forwarded-Proto "),
			strings.HasPrefix(t, "http-request set-header X-Client-Port "):
			dropped++
		default:
			out = append(out, l)
		}
	}
	switch {
	case reuse != 1:
		return "", fmt.Errorf("haproxy.cfg has %d http-reuse lines, want 1", reuse)
	case server != 2:
		return "", fmt.Errorf("haproxy.cfg has %d default-server lines, want 2 (backends proxies and proxies_live)", server)
	case dropped != 4:
		return "", fmt.Errorf("haproxy.cfg has %d of the 4 client-address header lines", dropped)
	}
	return strings.Join(out, "\n"), nil
}

// HAProxy is a running HAProxy.
type HAProxy struct {
	cmd     *exec.Cmd
	logPath string
	// URL and TLSURL are its short-link origins; StatsURL serves /stats.
	URL, TLSURL, StatsURL string
}

// Start writes s's configuration, has haproxy check it, starts it and
// waits until it reports every server up.
func Start(ctx context.Context, s Setup) (*HAProxy, error) {
	cfg, err := Render(s)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(s.Dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "haproxy", "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("haproxy -c %s: %w: %s", path, err, out)
	}
	logPath := filepath.Join(s.Dir, "haproxy.log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child holds its own copy
	cmd := exec.Command("haproxy", "-W", "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	h := &HAProxy{cmd: cmd, logPath: logPath,
		URL:      "http://" + net.JoinHostPort(s.Host, strconv.Itoa(PortHTTP)),
		TLSURL:   "https://" + net.JoinHostPort(s.Host, strconv.Itoa(PortHTTPS)),
		StatsURL: "http://" + net.JoinHostPort(s.Host, strconv.Itoa(PortStats)),
	}
	if err := h.waitUp(ctx, len(s.Servers)); err != nil {
		h.Stop()
		return nil, err
	}
	return h, nil
}

func (h *HAProxy) waitUp(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		up, err := h.ServersUp(ctx)
		if err == nil && len(up) >= n {
			return nil
		}
		last = err
		if last == nil {
			last = fmt.Errorf("%d of %d servers up", len(up), n)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("haproxy: servers not up: %v (log: %s)", last, h.logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ServersUp lists the servers of the proxies backend HAProxy reports up.
func (h *HAProxy) ServersUp(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.StatsURL+"/stats;csv", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return localfleet.ParseServersUp(resp.Body, "proxies")
}

// Stop stops HAProxy at once (SIGTERM: the benchmark's clients are done)
// and waits for it to exit.
func (h *HAProxy) Stop() {
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.cmd.Wait()
}

// Backend is the proxies backend's row of HAProxy's statistics (the
// stats page's CSV, what `show stat` prints): how many connections it
// opened to the servers and how many requests went over one it reused,
// the longest queue, and the average times, in milliseconds, of the last
// 1,024 requests: queued (qtime), connecting (ctime), waiting for the
// response (rtime) and in all (ttime).
type Backend struct {
	Connect, Reuse, Qmax       int64
	Qtime, Ctime, Rtime, Ttime int64
}

// BackendStats reads the proxies backend's statistics.
func (h *HAProxy) BackendStats(ctx context.Context) (Backend, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.StatsURL+"/stats;csv", nil)
	if err != nil {
		return Backend{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Backend{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Backend{}, err
	}
	return ParseBackend(string(data), "proxies")
}

// ParseBackend reads backend's BACKEND row from HAProxy's statistics CSV.
func ParseBackend(csv, backend string) (Backend, error) {
	var header []string
	for _, line := range strings.Split(csv, "\n") {
		fields := strings.Split(line, ",")
		if strings.HasPrefix(line, "# ") {
			header = strings.Split(strings.TrimPrefix(line, "# "), ",")
			continue
		}
		if len(fields) < 2 || fields[0] != backend || fields[1] != "BACKEND" || header == nil {
			continue
		}
		col := map[string]int64{}
		for i, name := range header {
			if i < len(fields) {
				col[name], _ = strconv.ParseInt(fields[i], 10, 64)
			}
		}
		return Backend{Connect: col["connect"], Reuse: col["reuse"], Qmax: col["qmax"],
			Qtime: col["qtime"], Ctime: col["ctime"], Rtime: col["rtime"], Ttime: col["ttime"]}, nil
	}
	return Backend{}, fmt.Errorf("haproxy stats: no BACKEND row for %s", backend)
}
