// Package baseline runs the programs shortfleet's figures are compared
// against, on the same machine in the same run: nginx answering a fixed 302
// with a gzip-buffered access log, and pgbench's select-only load.
package baseline

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Nginx is a running nginx.
type Nginx struct {
	dir string
	cmd *exec.Cmd
	URL string
}

// NginxConfig is the configuration the baseline runs: every path answers
// 302, and every request is logged in the combined format to a gzip-buffered
// access log, as a production shortener front would.
const NginxConfig = `worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log %[1]s/access.log.gz combined gzip=1 buffer=64k flush=1s;
    keepalive_requests 1000000;
    server {
        listen %[2]s;
        location / { return 302 https://example.com/landing/page?utm_source=bench; }
    }
}
`

// NginxBackendsConfig is the balancer's baseline (bench/cmd/lbbench): one
// nginx with a server block a backend, each on an address of its own as
// each proxy is, answering every path as NginxConfig does, to the same
// gzip-buffered combined log, except HAProxy's health check, /readyz,
// which gets 200 and no log line (a proxy answers it on its admin
// listener, outside its access log).
func NginxBackendsConfig(dir string, addrs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log %[1]s/access.log.gz combined gzip=1 buffer=64k flush=1s;
    keepalive_requests 1000000;
`, dir)
	for _, a := range addrs {
		fmt.Fprintf(&b, `    server {
        listen %s;
        location = /readyz { access_log off; return 200; }
        location / { return 302 https://example.com/landing/page?utm_source=bench; }
    }
`, a)
	}
	b.WriteString("}\n")
	return b.String()
}

// StartNginx starts nginx in the foreground listening on addr, with its
// files in dir.
func StartNginx(dir, addr string) (*Nginx, error) {
	return startNginx(dir, fmt.Sprintf(NginxConfig, dir, addr), []string{addr})
}

// StartNginxBackends starts one nginx in the foreground with
// NginxBackendsConfig, its files in dir; URL is the first backend's.
func StartNginxBackends(dir string, addrs []string) (*Nginx, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("nginx backends: no addresses")
	}
	return startNginx(dir, NginxBackendsConfig(dir, addrs), addrs)
}

func startNginx(dir, config string, addrs []string) (*Nginx, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("nginx", "-c", conf, "-p", dir, "-g", "daemon off;")
	out, err := os.Create(filepath.Join(dir, "nginx.out"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	for _, addr := range addrs {
		if err := WaitListening(addr, 10*time.Second); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("nginx: %w (log: %s)", err, out.Name())
		}
	}
	return &Nginx{dir: dir, cmd: cmd, URL: "http://" + addrs[0]}, nil
}

// Pid is the nginx master's process id.
func (n *Nginx) Pid() int { return n.cmd.Process.Pid }

// Stop stops nginx gracefully, which flushes its gzip log buffer.
func (n *Nginx) Stop() error {
	n.cmd.Process.Signal(syscall.SIGQUIT)
	return n.cmd.Wait()
}

// LogBytes is the size of the gzip access log (after Stop, all of it).
func (n *Nginx) LogBytes() int64 {
	st, err := os.Stat(filepath.Join(n.dir, "access.log.gz"))
	if err != nil {
		return 0
	}
	return st.Size()
}

// WaitListening waits until addr accepts connections.
func WaitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %s: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pgbench runs pgbench against one server.
type Pgbench struct {
	Bin      string // pgbench program
	Host     string
	Port     int
	User     string
	Password string
	DB       string
}

func (p Pgbench) command(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{"-h", p.Host, "-p", strconv.Itoa(p.Port), "-U", p.User}
	cmd := exec.CommandContext(ctx, p.Bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+p.Password)
	return cmd
}

// Init creates pgbench's tables at scale factor scale.
func (p Pgbench) Init(ctx context.Context, scale int) error {
	out, err := p.command(ctx, "-i", "-q", "-s", strconv.Itoa(scale), p.DB).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgbench -i: %w: %s", err, out)
	}
	return nil
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// SelectOnly runs `pgbench -S` (one primary-key SELECT per transaction)
// with clients connections for d, and returns transactions per second.
func (p Pgbench) SelectOnly(ctx context.Context, clients, threads int, d time.Duration) (float64, string, error) {
	args := []string{"-S", "-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads), "-T", strconv.Itoa(int(d.Seconds())), p.DB}
	out, err := p.command(ctx, args...).CombinedOutput()
	cmdline := "pgbench " + strings.Join(args, " ")
	if err != nil {
		return 0, cmdline, fmt.Errorf("pgbench -S: %w: %s", err, out)
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, cmdline, fmt.Errorf("pgbench printed no tps: %s", out)
	}
	tps, err := strconv.ParseFloat(string(m[1]), 64)
	return tps, cmdline, err
}

// Custom runs a pgbench script (-f) with clients connections for d, and
// returns transactions per second.
func (p Pgbench) Custom(ctx context.Context, script string, clients, threads int, d time.Duration) (float64, string, error) {
	args := []string{"-n", "-f", script, "-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads), "-T", strconv.Itoa(int(d.Seconds())), p.DB}
	out, err := p.command(ctx, args...).CombinedOutput()
	cmdline := "pgbench " + strings.Join(args, " ")
	if err != nil {
		return 0, cmdline, fmt.Errorf("pgbench: %w: %s", err, out)
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, cmdline, fmt.Errorf("pgbench printed no tps: %s", out)
	}
	tps, err := strconv.ParseFloat(string(m[1]), 64)
	return tps, cmdline, err
}
