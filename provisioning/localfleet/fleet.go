// Package localfleet runs the whole shortfleet topology on one machine: a
// Postgres primary, N hot standbys made with pg_basebackup over physical
// replication slots, the primary app, N proxies each reading its own
// replica, and the mapreduce daemon. Each "host" gets its own loopback
// address, so ports and configuration look as they do on bare metal:
//
//	<subnet>.2    primary host: Postgres :5432, primary app :8000
//	<subnet>.3    mapreduce host: admin :9100
//	<subnet>.4    load balancer (HAProxy), short links: HTTP :8080, HTTPS :8443, stats :8404
//	<subnet>.5    load balancer, the primary app's name: HTTP :8080 (to HTTPS), HTTPS :8443
//	<subnet>.1N   proxy-0N host: replica :5432, redirects :8080, admin :9090
//
// Every process is supervised and restarted if it dies (README.md decision
// 10). The README's quick start, the end-to-end tests and the benchmarks
// all use this code.
package localfleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"shortfleet/provisioning/pgcluster"
	"shortfleet/provisioning/proc"
	"shortfleet/provisioning/settings"
	"shortfleet/provisioning/tlscert"
)

// Ports every host uses.
const (
	PortPostgres  = 5432
	PortPrimary   = 8000
	PortRedirect  = 8080
	PortAdmin     = 9090
	PortMapreduce = 9100
)

// Database is the name of shortfleet's database.
const Database = "shortfleet"

// Config describes a local fleet.
type Config struct {
	// StateDir holds everything the fleet keeps: clusters, logs, secrets.
	// It must be traversable by the postgres user when running as root.
	StateDir string
	// BinDir holds the primary, proxy and mapreduce binaries.
	BinDir string
	// Proxies is N, the number of proxy hosts (default 2).
	Proxies int
	// Subnet is the first three octets of the hosts' loopback addresses
	// (default "127.0.0").
	Subnet string
	// Schedule is the mapreduce daemon's cron schedule (default every five
	// minutes).
	Schedule string
	// PGSettings are extra Postgres settings for every cluster.
	PGSettings map[string]string
	// ProxyArgs are extra flags for every proxy.
	ProxyArgs []string
	// ProxyArgsFor, when set, gives extra flags for proxy i alone, after
	// ProxyArgs (fault drills: one proxy's clock off, its log on a small
	// disk).
	ProxyArgsFor func(i int) []string
	// GeoIPPath is the country database the mapreduce job uses, if any.
	GeoIPPath string
	// PrimaryArgs are extra flags for the primary app.
	PrimaryArgs []string
	// NoBalancer keeps HAProxy out even where it is installed. The app
	// then serves plain HTTP with -insecure-cookies: a development setup.
	NoBalancer bool
	// TLSDir holds the fleet's certificate authority (tlscert.CAFile,
	// kept across starts so it is trusted once); default <StateDir>/tls.
	// Tests share one.
	TLSDir string
	// Balance overrides the shared HAProxy balance setting (roundrobin,
	// leastconn or uri-consistent).
	Balance string
	// Asynchronous: commits do not wait for a standby: a promotion can
	// lose acknowledged links; benchmarks measure the difference. Without
	// it the primary waits, at each commit, for any one standby to have
	// the commit (README.md decision 9), so a promotion loses no
	// acknowledged link; with every standby down, commits wait.
	Asynchronous bool
}

func (c *Config) defaults() {
	if c.Proxies <= 0 {
		c.Proxies = 2
	}
	if c.Subnet == "" {
		c.Subnet = "127.0.0"
	}
	if c.Schedule == "" {
		c.Schedule = "*/5 * * * *"
	}
}

// FreeSubnet picks a random 127.x.y subnet whose primary host's Postgres
// port is free, so fleets started at once (tests, benchmarks) never meet.
func FreeSubnet() (string, error) {
	for range 100 {
		s := fmt.Sprintf("127.%d.%d", 1+rand.IntN(254), rand.IntN(256))
		l, err := net.Listen("tcp", net.JoinHostPort(s+".2", strconv.Itoa(PortPostgres)))
		if err == nil {
			l.Close()
			return s, nil
		}
	}
	return "", errors.New("no free loopback subnet")
}

// Secrets are generated once per state folder and kept in it.
type Secrets struct {
	CodeKey     string `json:"code_key"`     // hex; the codes' Feistel key
	AdminToken  string `json:"admin_token"`  // proxies' admin bearer token
	ReadToken   string `json:"read_token"`   // proxies' read-only token: /metrics, for the fleet page
	PGPassword  string `json:"pg_password"`  // Postgres superuser password
	VisitorSalt string `json:"visitor_salt"` // keys the unique-visitor hashes
	CSRFKey     string `json:"csrf_key"`     // hex; signs the web forms' CSRF tokens
}

// Fleet is a running local fleet.
type Fleet struct {
	cfg     Config
	logger  *slog.Logger
	Secrets Secrets

	Primary    *pgcluster.Cluster
	Replicas   []*pgcluster.Cluster
	// Apps are the app's instances, one on each of appHosts, all behind
	// the balancer; PrimaryApp is the first, on the primary host.
	Apps       []*App
	PrimaryApp *App
	Proxies    []*App
	Mapreduce  *App

	// dbHosts are the Postgres addresses the apps' primary DSN lists, the
	// primary first: after a promotion the apps find the new primary among
	// them by themselves (target_session_attrs=read-write).
	dbHosts []string
	haproxy *proc.Process
	// balanced is true when HAProxy fronts the fleet: the app then takes
	// requests only through it, over HTTPS.
	balanced bool
	ca       *tlscert.CA
	// pgDir holds the clusters: the state folder's pg/, or a folder under
	// ExternalPGRoot when the postgres user cannot enter the state folder.
	pgDir string
}

// ExternalPGRoot holds the clusters of fleets whose state folder the
// postgres user cannot enter (as root, a checkout under /root, which is
// 0700): one folder each, named after the state folder's path.
const ExternalPGRoot = "/var/lib/shortfleet"

// PGDir is the folder of the fleet's Postgres clusters.
func (f *Fleet) PGDir() string { return f.pgDir }

// host returns the loopback address of host number n.
func (c *Config) host(n int) string { return c.Subnet + "." + strconv.Itoa(n) }

// PrimaryHost is the primary's address.
func (f *Fleet) PrimaryHost() string { return f.cfg.host(2) }

// ProxyHost is proxy i's address (i from 0).
func (f *Fleet) ProxyHost(i int) string { return f.cfg.host(11 + i) }

// ProxyID is proxy i's id (i from 0).
func ProxyID(i int) string { return fmt.Sprintf("proxy-%02d", i+1) }

func (f *Fleet) path(parts ...string) string {
	return filepath.Join(append([]string{f.cfg.StateDir}, parts...)...)
}

// Start brings the fleet up and returns when every process serves.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Fleet, error) {
	cfg.defaults()
	f := &Fleet{cfg: cfg, logger: logger}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	f.cfg.StateDir = abs
	f.pgDir = f.path("pg")
	if err := pgcluster.PostgresCanEnter(abs); err != nil {
		sum := sha256.Sum256([]byte(abs))
		f.pgDir = filepath.Join(ExternalPGRoot, "pg-"+hex.EncodeToString(sum[:6]))
		logger.Warn("the Postgres clusters are kept outside the state folder", "dir", f.pgDir, "why", err)
	}
	for _, d := range []string{f.path(), f.path("logs"), filepath.Dir(f.pgDir), f.pgDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, err
		}
	}
	fresh, err := f.loadSecrets()
	if err != nil {
		return nil, err
	}
	if f.pgDir != f.path("pg") {
		// A new state folder means new clusters: an outside folder left
		// by an earlier one of the same path holds another password.
		if fresh {
			if err := os.RemoveAll(f.pgDir); err != nil {
				return nil, err
			}
			if err := os.MkdirAll(f.pgDir, 0o755); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(f.pgDir, "state-folder"), []byte(abs+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	f.balanced = HAProxyInstalled() && !cfg.NoBalancer
	if f.balanced {
		if f.cfg.TLSDir == "" {
			f.cfg.TLSDir = f.path("tls")
		}
		if f.ca, err = tlscert.LoadOrCreateCA(f.cfg.TLSDir); err != nil {
			return nil, err
		}
	}
	if err := f.start(ctx); err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

// CAFile is the certificate of the authority that issued the balancer's,
// which clients are told to trust; "" without a balancer.
func (f *Fleet) CAFile() string {
	if !f.balanced {
		return ""
	}
	return filepath.Join(f.cfg.TLSDir, tlscert.CAFile)
}

// CA is the fleet's certificate authority, nil without a balancer.
func (f *Fleet) CA() *tlscert.CA { return f.ca }

// loadSecrets reads the state folder's secrets, makes those it lacks and
// writes them back; fresh is true when the folder had none.
func (f *Fleet) loadSecrets() (fresh bool, err error) {
	p := f.path("secrets.json")
	data, err := os.ReadFile(p)
	if err == nil {
		if err := json.Unmarshal(data, &f.Secrets); err != nil {
			return false, fmt.Errorf("read %s: %w", p, err)
		}
	} else if !os.IsNotExist(err) {
		return false, err
	}
	fresh = err != nil
	// Fill in what is missing: a new folder, or one from an older version.
	for _, s := range []struct {
		v *string
		n int
	}{{&f.Secrets.CodeKey, 32}, {&f.Secrets.AdminToken, 24}, {&f.Secrets.ReadToken, 24}, {&f.Secrets.PGPassword, 16}, {&f.Secrets.VisitorSalt, 24}, {&f.Secrets.CSRFKey, 32}} {
		if *s.v == "" {
			*s.v = pgcluster.RandomSecret(s.n)
		}
	}
	data, _ = json.MarshalIndent(f.Secrets, "", "  ")
	return fresh, os.WriteFile(p, data, 0o600)
}

func (f *Fleet) timed(what string, fn func() error) error {
	t := time.Now()
	err := fn()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	f.logger.Info(what, "took", time.Since(t).Round(time.Millisecond))
	return nil
}

func (f *Fleet) cluster(name, addr string) (*pgcluster.Cluster, error) {
	return pgcluster.New(pgcluster.Config{
		Name: name, Dir: filepath.Join(f.pgDir, name), Addr: addr, Port: PortPostgres,
		Password: f.Secrets.PGPassword, Settings: f.cfg.PGSettings, Restart: true,
	}, f.logger)
}

func (f *Fleet) start(ctx context.Context) error {
	// Check the addresses first: a clear message beats a Postgres log.
	for _, a := range []string{net.JoinHostPort(f.PrimaryHost(), strconv.Itoa(PortPostgres)), net.JoinHostPort(f.PrimaryHost(), strconv.Itoa(PortPrimary))} {
		if l, err := net.Listen("tcp", a); err != nil {
			return fmt.Errorf("%s is taken (is another fleet up? try make down): %w", a, err)
		} else {
			l.Close()
		}
	}
	primary, err := f.cluster("primary", f.PrimaryHost())
	if err != nil {
		return err
	}
	f.Primary = primary
	if err := f.timed("primary database up", func() error {
		if err := primary.Init(ctx); err != nil {
			return err
		}
		if err := primary.Start(ctx, f.path("logs", "postgres-primary.log")); err != nil {
			return err
		}
		// No commit waits for a standby until the standbys stream: a
		// primary started again keeps synchronous_standby_names (in
		// postgresql.auto.conf), and a pending migration would wait
		// for standbys that start only after it.
		if err := setSynchronous(ctx, primary, ""); err != nil {
			return err
		}
		return primary.CreateDatabase(ctx, Database)
	}); err != nil {
		return err
	}
	if err := f.timed("schema migrated", func() error {
		out, err := f.Command(ctx, "primary", "migrate", "up").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}); err != nil {
		return err
	}
	f.Replicas = make([]*pgcluster.Cluster, f.cfg.Proxies)
	if err := f.timed(fmt.Sprintf("%d replicas up", f.cfg.Proxies), func() error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(4)
		for i := range f.Replicas {
			g.Go(func() error {
				c, err := f.cluster(ProxyID(i), f.ProxyHost(i))
				if err != nil {
					return err
				}
				if err := c.BaseBackup(gctx, primary, strings.ReplaceAll(ProxyID(i), "-", "_")); err != nil {
					return err
				}
				if err := c.Start(gctx, f.path("logs", "postgres-"+ProxyID(i)+".log")); err != nil {
					return err
				}
				f.Replicas[i] = c
				return nil
			})
		}
		return g.Wait()
	}); err != nil {
		return err
	}
	f.dbHosts = []string{primary.Addr()}
	for _, r := range f.Replicas {
		f.dbHosts = append(f.dbHosts, r.Addr())
	}
	if err := f.timed(fmt.Sprintf("synchronous replication %s", onOff(!f.cfg.Asynchronous)), func() error {
		return f.SetSynchronous(ctx, !f.cfg.Asynchronous)
	}); err != nil {
		return err
	}
	f.Proxies = make([]*App, f.cfg.Proxies)
	if err := f.timed(fmt.Sprintf("%d proxies up", f.cfg.Proxies), func() error {
		g, gctx := errgroup.WithContext(ctx)
		for i := range f.Proxies {
			g.Go(func() error {
				a := f.proxyApp(i)
				if err := a.Start(gctx, "redirect", "admin"); err != nil {
					return err
				}
				f.Proxies[i] = a
				return nil
			})
		}
		return g.Wait()
	}); err != nil {
		return err
	}
	f.Apps = make([]*App, len(f.appHosts()))
	if err := f.timed(fmt.Sprintf("%d app instances up", len(f.Apps)), func() error {
		g, gctx := errgroup.WithContext(ctx)
		for i, h := range f.appHosts() {
			g.Go(func() error {
				a := f.newApp(appName(i), f.primaryArgs(h), "SHORTFLEET_DSN="+f.PrimaryDSN(), "SHORTFLEET_CSRF_KEY="+f.Secrets.CSRFKey)
				if err := a.Start(gctx, "http"); err != nil {
					return err
				}
				f.Apps[i] = a
				return nil
			})
		}
		return g.Wait()
	}); err != nil {
		return err
	}
	f.PrimaryApp = f.Apps[0]
	if f.balanced {
		if err := f.timed("load balancer up", func() error { return f.startHAProxy(ctx) }); err != nil {
			return err
		}
	}
	f.Mapreduce = f.newApp("mapreduce", []string{
		"-admin-listen", net.JoinHostPort(f.cfg.host(3), strconv.Itoa(PortMapreduce)),
		"-schedule", f.cfg.Schedule,
		"-proxies", strings.Join(f.AdminURLs(), ","),
	}, "SHORTFLEET_DSN="+f.PrimaryDSN(), "SHORTFLEET_GEOIP="+f.cfg.GeoIPPath)
	if err := f.timed("mapreduce daemon up", func() error { return f.Mapreduce.Start(ctx, "admin") }); err != nil {
		return err
	}
	return f.writeState()
}

// etcdHosts are the addresses of etcd's three members.
func (f *Fleet) etcdHosts() []string {
	return []string{f.cfg.host(6), f.cfg.host(7), f.cfg.host(8)}
}

// appHosts are the hosts the app runs on: the primary host and the first
// proxy host, so that creation and the dashboard outlive either host (the
// balancer sends each request to one that answers). Without a balancer
// only the first: nothing would spread the requests.
func (f *Fleet) appHosts() []string {
	if !f.balanced {
		return []string{f.PrimaryHost()}
	}
	return []string{f.PrimaryHost(), f.ProxyHost(0)}
}

// appName is the app instance's name: "primary" (the binary's name), then
// "primary-2", ...
func appName(i int) string {
	if i == 0 {
		return "primary"
	}
	return fmt.Sprintf("primary-%d", i+1)
}

// primaryArgs are the flags of the app instance on host.
func (f *Fleet) primaryArgs(host string) []string {
	// Links to any host of the fleet are refused: the primary host, the
	// proxies, the balancer (whether or not it runs: nothing else may
	// take its address), the mapreduce host, etcd's.
	hosts := append([]string{f.PrimaryHost(), f.balancerHost(), f.appHost(), f.cfg.host(3)}, f.etcdHosts()...)
	for i := range f.cfg.Proxies {
		hosts = append(hosts, f.ProxyHost(i))
	}
	args := []string{
		"-listen", net.JoinHostPort(host, strconv.Itoa(PortPrimary)),
		"-short-base", f.ShortBase(),
		"-proxies", strings.Join(f.AdminURLs(), ","),
		"-fleet-hosts", strings.Join(hosts, ","),
		// Requests through the balancer are charged to the client its
		// X-Forwarded-For names, and are HTTPS when its X-Forwarded-Proto
		// says so; anyone else's headers are ignored.
		"-trusted-proxies", f.balancerHost(),
	}
	if f.balanced {
		// Plain HTTP to the app is sent to HTTPS, which is another port here.
		args = append(args, "-app-base", f.PrimaryURL())
	} else {
		args = append(args, "-insecure-cookies") // no HTTPS without the balancer
	}
	return append(args, f.cfg.PrimaryArgs...)
}

// newApp prepares a supervised binary with the fleet's secrets in its
// environment (never in argv, which ps shows).
func (f *Fleet) newApp(name string, args []string, env ...string) *App {
	bin := strings.SplitN(name, "-", 2)[0]
	env = append(env, f.tokenEnv(bin)...)
	env = append(env, "SHORTFLEET_CODE_KEY="+f.Secrets.CodeKey, "SHORTFLEET_VISITOR_SALT="+f.Secrets.VisitorSalt)
	return newApp(name, filepath.Join(f.cfg.BinDir, bin), args, env, f.path("logs", name+".log"), f.logger)
}

// tokenEnv is the proxies' tokens a binary gets: the primary app only the
// read token (its fleet page reads readiness and metrics), never the admin
// token, which reads the raw logs and acknowledges them; the proxies both;
// mapreduce the admin token.
func (f *Fleet) tokenEnv(bin string) []string {
	switch bin {
	case "primary":
		return []string{"SHORTFLEET_READ_TOKEN=" + f.Secrets.ReadToken}
	case "proxy":
		return []string{"SHORTFLEET_ADMIN_TOKEN=" + f.Secrets.AdminToken, "SHORTFLEET_READ_TOKEN=" + f.Secrets.ReadToken}
	}
	return []string{"SHORTFLEET_ADMIN_TOKEN=" + f.Secrets.AdminToken}
}

func (f *Fleet) proxyApp(i int) *App {
	id := ProxyID(i)
	args := append([]string{
		"-id", id,
		"-listen", net.JoinHostPort(f.ProxyHost(i), strconv.Itoa(PortRedirect)),
		"-admin-listen", net.JoinHostPort(f.ProxyHost(i), strconv.Itoa(PortAdmin)),
		"-log-dir", f.path("proxy", id, "logs"),
		// Behind the load balancer: believe its X-Forwarded-For and
		// X-Client-Port, no one else's.
		"-trusted-proxies", f.balancerHost(),
	}, f.cfg.ProxyArgs...)
	if f.cfg.ProxyArgsFor != nil {
		args = append(args, f.cfg.ProxyArgsFor(i)...)
	}
	return f.newApp(id, args, "SHORTFLEET_REPLICA_DSN="+f.Replicas[i].DSN(Database),
		"SHORTFLEET_PRIMARY_DSN="+f.PrimaryDSN())
}

// StartPrimaryDB starts the primary database again after Primary.Stop:
// a primary host back after an outage.
func (f *Fleet) StartPrimaryDB(ctx context.Context) error {
	return f.Primary.Start(ctx, f.path("logs", "postgres-primary.log"))
}

// Command prepares a binary of the fleet to run outside supervision, with
// the fleet's secrets and the primary's address in its environment.
func (f *Fleet) Command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(f.cfg.BinDir, bin), args...)
	dsn := f.Primary.DSN(Database)
	if f.dbHosts != nil {
		dsn = f.PrimaryDSN()
	}
	cmd.Env = append(os.Environ(),
		"SHORTFLEET_DSN="+dsn,
		"SHORTFLEET_CODE_KEY="+f.Secrets.CodeKey,
		"SHORTFLEET_VISITOR_SALT="+f.Secrets.VisitorSalt)
	cmd.Env = append(cmd.Env, f.tokenEnv(bin)...)
	if f.cfg.GeoIPPath != "" {
		cmd.Env = append(cmd.Env, "SHORTFLEET_GEOIP="+f.cfg.GeoIPPath)
	}
	return cmd
}

// MapreduceOnce runs `mapreduce -once` against the fleet and returns its
// output.
func (f *Fleet) MapreduceOnce(ctx context.Context) (string, error) {
	out, err := f.Command(ctx, "mapreduce", "-once", "-proxies", strings.Join(f.AdminURLs(), ",")).CombinedOutput()
	return string(out), err
}

// ShortBase is the origin of short URLs: the load balancer's HTTPS (short
// links answer on its plain HTTP too), or the first proxy without one.
func (f *Fleet) ShortBase() string {
	if u := f.BalancerTLSURL(); u != "" {
		return u
	}
	return "http://" + net.JoinHostPort(f.ProxyHost(0), strconv.Itoa(PortRedirect))
}

// PrimaryDSN is the apps' URL of the primary database: every cluster of
// the fleet, the primary first, of which they take the one that accepts
// writes. A promoted replica is found without repointing anything.
func (f *Fleet) PrimaryDSN() string {
	u, _ := url.Parse(f.Primary.DSN(Database))
	u.Host = strings.Join(f.dbHosts, ",")
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return u.String()
}

// SetSynchronous turns synchronous commit to any one standby (the shared
// setting) on or off on the primary, as Config.Asynchronous chooses at
// start, and waits until the standbys report it: whatever runs next runs
// under it (benchmarks measure both on one fleet). A later Promote follows
// it.
func (f *Fleet) SetSynchronous(ctx context.Context, on bool) error {
	names := ""
	if on {
		names = settings.LoadPostgres().SynchronousStandbyNames
	}
	if err := setSynchronous(ctx, f.Primary, names); err != nil {
		return err
	}
	f.cfg.Asynchronous = !on
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// setSynchronous sets the primary's synchronous_standby_names (names, or
// none when empty) and waits until its walsenders have read it: with
// names, until a standby streams as a synchronous candidate (they must
// stream first, or commits wait); without, until none does.
func setSynchronous(ctx context.Context, primary *pgcluster.Cluster, names string) error {
	conn, err := primary.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	q := "ALTER SYSTEM RESET synchronous_standby_names"
	if names != "" {
		q = "ALTER SYSTEM SET synchronous_standby_names = " + names
	}
	if _, err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("set synchronous_standby_names: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reload settings: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var sync int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_replication WHERE sync_state <> 'async'`).Scan(&sync); err != nil {
			return fmt.Errorf("synchronous standbys of %s: %w", primary.Name(), err)
		}
		if (sync > 0) == (names != "") {
			return nil
		}
		select {
		case <-ctx.Done():
			if names != "" {
				return fmt.Errorf("no standby of %s streams as synchronous (commits would wait): %w", primary.Name(), ctx.Err())
			}
			return fmt.Errorf("standbys of %s still synchronous: %w", primary.Name(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// PrimaryURL is the primary app's URL: HTTPS through the balancer, or,
// without one, the app's own plain listener.
func (f *Fleet) PrimaryURL() string {
	if f.balanced {
		return "https://" + net.JoinHostPort(f.appHost(), strconv.Itoa(PortBalancerTLS))
	}
	return f.PrimaryApp.URL("http")
}

// RedirectURLs are the proxies' redirect URLs.
func (f *Fleet) RedirectURLs() []string {
	var u []string
	for i := range f.cfg.Proxies {
		u = append(u, "http://"+net.JoinHostPort(f.ProxyHost(i), strconv.Itoa(PortRedirect)))
	}
	return u
}

// AdminURLs are the proxies' admin URLs.
func (f *Fleet) AdminURLs() []string {
	var u []string
	for i := range f.cfg.Proxies {
		u = append(u, "http://"+net.JoinHostPort(f.ProxyHost(i), strconv.Itoa(PortAdmin)))
	}
	return u
}

// ProxyLogDir is proxy i's access log folder.
func (f *Fleet) ProxyLogDir(i int) string { return f.path("proxy", ProxyID(i), "logs") }

// WaitReplicas waits until every replica has replayed everything the
// primary has written so far.
func (f *Fleet) WaitReplicas(ctx context.Context) error {
	lsn, err := f.Primary.CurrentLSN(ctx)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range f.Replicas {
		if r != f.Primary { // a promoted replica is the primary now
			g.Go(func() error { return r.WaitReplay(gctx, lsn) })
		}
	}
	return g.Wait()
}

// State is what `fleet up` writes to state.json for people and `fleet down`.
type State struct {
	Pid         int      `json:"pid"`
	PrimaryURL  string   `json:"primary_url"`
	ShortBase   string   `json:"short_base"`
	Redirects   []string `json:"redirect_urls"`
	Admins      []string `json:"admin_urls"`
	Mapreduce   string   `json:"mapreduce_url"`
	Balancer    string   `json:"balancer_url,omitempty"`
	BalancerTLS string   `json:"balancer_tls_url,omitempty"`
	CAFile      string   `json:"ca_file,omitempty"`
	PrimaryDB   string   `json:"primary_db"`
	ReplicaDBs  []string `json:"replica_dbs"`
}

// State describes the running fleet.
func (f *Fleet) State() State {
	s := State{
		Pid: os.Getpid(), PrimaryURL: f.PrimaryURL(), ShortBase: f.ShortBase(),
		Redirects: f.RedirectURLs(), Admins: f.AdminURLs(), Mapreduce: f.Mapreduce.URL("admin"),
		Balancer: f.BalancerURL(), BalancerTLS: f.BalancerTLSURL(), CAFile: f.CAFile(),
		PrimaryDB: f.Primary.Addr(),
	}
	for _, r := range f.Replicas {
		s.ReplicaDBs = append(s.ReplicaDBs, r.Addr())
	}
	return s
}

func (f *Fleet) writeState() error {
	data, _ := json.MarshalIndent(f.State(), "", "  ")
	return os.WriteFile(f.path("state.json"), data, 0o644)
}

// Stop stops everything in order: mapreduce, the primary app, the proxies
// (which seal their logs), the replicas, the primary database. It logs how
// long each step took.
func (f *Fleet) Stop() error {
	var errs []error
	step := func(what string, fn func() error) {
		t := time.Now()
		err := fn()
		f.logger.Info("stopped "+what, "took", time.Since(t).Round(time.Millisecond), "err", err)
		if err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", what, err))
		}
	}
	if f.Mapreduce != nil {
		step("mapreduce", f.Mapreduce.Stop)
	}
	if f.haproxy != nil {
		step("load balancer", f.haproxy.Stop)
	}
	step("app", func() error { return stopAll(f.Apps) })
	step("proxies", func() error { return stopAll(f.Proxies) })
	step("replicas", func() error { return stopAll(f.Replicas) })
	if f.Primary != nil {
		step("primary database", f.Primary.Stop)
	}
	os.Remove(f.path("state.json"))
	return errors.Join(errs...)
}

// stopAll stops every non-nil member at once.
func stopAll[T any, P interface {
	*T
	Stop() error
}](all []P) error {
	var wg sync.WaitGroup
	errs := make([]error, len(all))
	for i, x := range all {
		if x != nil {
			wg.Go(func() { errs[i] = x.Stop() })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}
