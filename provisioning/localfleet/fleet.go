// Package localfleet runs the whole shortfleet topology on one machine: a
// Postgres primary, N hot standbys made with pg_basebackup over physical
// replication slots, the primary app, N proxies each reading its own
// replica, and the mapreduce daemon. Each "host" gets its own loopback
// address, so ports and configuration look as they do on bare metal:
//
//	<subnet>.2    primary host: Postgres :5432, primary app :8000, its admin :9091
//	<subnet>.3    mapreduce host: admin :9100; with Config.Monitoring, Prometheus :9090, Alertmanager :9093
//	<subnet>.4    load balancer (HAProxy), short links: HTTP :8080, HTTPS :8443, stats :8404
//	<subnet>.5    load balancer, the primary app's name: HTTP :8080 (to HTTPS), HTTPS :8443
//	<subnet>.1N   proxy-0N host: replica :5432, redirects :8080, admin :9090
//	              (proxy-01's also a second app instance :8000, admin :9091)
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

	"shortfleet/provisioning/patroni"
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
	PortAppAdmin  = 9091 // the app's admin listener: /metrics for the read token
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
	// GeoIPPath is the country database the mapreduce job uses; empty:
	// the default one (settings.LoadGeoIP().Path, which
	// provisioning/deps.sh installs).
	GeoIPPath string
	// ProxyCountries has the proxies load that database too, for links'
	// country rules. make up sets it; the tests leave it off, as no fleet
	// test has a country rule and flattening the database costs each
	// proxy seconds of CPU at start (six under the race detector), which
	// sixteen proxies, or three fleets at once, feel.
	ProxyCountries bool
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
	// Monitoring starts Prometheus and Alertmanager on the mapreduce host
	// with the Ansible monitoring role's rules, inhibit rules and
	// configuration (provisioning/monitoring). make up sets it; tests that
	// do not watch alerts leave it off and pay nothing for it.
	Monitoring bool
	// MonitoringSpeedup divides the durations an operator waits on
	// (scrape interval, the rules' for:, Alertmanager's grouping waits)
	// so that a test sees alerts fire in seconds; 0 or 1: as deployed.
	MonitoringSpeedup int
	// AlertWebhooks are the URLs Alertmanager posts alerts to (firing
	// and resolved); none: they show on its page only.
	AlertWebhooks []string
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
	if c.GeoIPPath == "" {
		c.GeoIPPath = settings.LoadGeoIP().Path
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
	// PatroniPassword guards Patroni's REST API's unsafe endpoints
	// (switchover, restart, configuration).
	PatroniPassword string `json:"patroni_password"`
}

// Fleet is a running local fleet.
type Fleet struct {
	cfg     Config
	logger  *slog.Logger
	Secrets Secrets

	// Primary is the member that led when Leader last asked Patroni;
	// Replicas[i] is proxy i's host's member (which may lead after a
	// failover); DBs is every member, the primary host's first.
	Primary  *pgcluster.Cluster
	Replicas []*pgcluster.Cluster
	DBs      []*pgcluster.Cluster
	// Etcd is Patroni's store: three members, each on a host of its own.
	Etcd []*Etcd
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
	// prometheus and alertmanager run with Config.Monitoring.
	prometheus, alertmanager *proc.Process
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
	}{{&f.Secrets.CodeKey, 32}, {&f.Secrets.AdminToken, 24}, {&f.Secrets.ReadToken, 24}, {&f.Secrets.PGPassword, 16}, {&f.Secrets.VisitorSalt, 24}, {&f.Secrets.CSRFKey, 32}, {&f.Secrets.PatroniPassword, 24}} {
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

// MainDB is the name of the primary host's Postgres member, the one that
// bootstraps the cluster; the proxy hosts' members are named after their
// proxies. Which member is the primary is Patroni's to say (Leader).
const MainDB = "db-main"

func (f *Fleet) cluster(name, addr string) (*pgcluster.Cluster, error) {
	return pgcluster.New(pgcluster.Config{
		Name: name, Dir: filepath.Join(f.pgDir, name), Addr: addr, Port: PortPostgres,
		Password: f.Secrets.PGPassword, Settings: f.cfg.PGSettings, Restart: true,
		Patroni: &pgcluster.Patroni{Etcd: f.EtcdEndpoints(), APIPassword: f.Secrets.PatroniPassword},
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
	if err := f.startEtcd(ctx); err != nil {
		return err
	}
	main, err := f.cluster(MainDB, f.PrimaryHost())
	if err != nil {
		return err
	}
	f.Primary = main
	f.DBs = []*pgcluster.Cluster{main}
	if err := f.timed("etcd and the primary database up (Patroni)", func() error {
		// The primary host's member starts alone, so that it bootstraps
		// the cluster (initdb) and leads; a state folder's cluster
		// starts again with whichever member led.
		if err := main.Start(ctx, f.path("logs", "postgres-"+MainDB+".log")); err != nil {
			return err
		}
		if err := f.waitEtcd(ctx); err != nil {
			return err
		}
		if _, err := f.Leader(ctx); err != nil {
			return err
		}
		return f.Primary.CreateDatabase(ctx, Database)
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
	if err := f.timed(fmt.Sprintf("%d replicas up (Patroni)", f.cfg.Proxies), func() error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(4) // base backups, four at a time
		for i := range f.Replicas {
			g.Go(func() error {
				c, err := f.cluster(ProxyID(i), f.ProxyHost(i))
				if err != nil {
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
	f.DBs = append(f.DBs, f.Replicas...)
	for _, c := range f.DBs {
		f.dbHosts = append(f.dbHosts, c.Addr())
	}
	if _, err := f.Leader(ctx); err != nil {
		return err
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
				if err := a.Start(gctx, "http", "admin"); err != nil {
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
	if f.cfg.Monitoring {
		if err := f.timed("Prometheus and Alertmanager up", func() error { return f.startMonitoring(ctx) }); err != nil {
			return err
		}
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

// AppOn is the app instance on host, nil if none runs there.
func (f *Fleet) AppOn(host string) *App {
	for i, h := range f.appHosts() {
		if h == host && i < len(f.Apps) {
			return f.Apps[i]
		}
	}
	return nil
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
		// /metrics for the read token (tokenEnv), as on bare metal.
		"-admin-listen", net.JoinHostPort(host, strconv.Itoa(PortAppAdmin)),
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
	env := []string{"SHORTFLEET_REPLICA_DSN=" + f.Replicas[i].DSN(Database), "SHORTFLEET_PRIMARY_DSN=" + f.PrimaryDSN()}
	if f.cfg.ProxyCountries {
		env = append(env, "SHORTFLEET_COUNTRY_DB="+f.cfg.GeoIPPath)
	}
	return f.newApp(id, args, env...)
}

// StartDB starts a member again after its Stop or Kill: a host back
// after an outage. Patroni rejoins it to the cluster, rewinding it with
// pg_rewind if it led on a timeline that has moved on.
func (f *Fleet) StartDB(ctx context.Context, c *pgcluster.Cluster) error {
	return c.Start(ctx, f.path("logs", "postgres-"+c.Name()+".log"))
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

// SetSynchronous turns Patroni's synchronous mode on or off (the shared
// setting is on; Config.Asynchronous chooses at start) and waits until the
// primary shows it: on, a standby streams as synchronous (commits wait for
// it); off, none does. Whatever runs next runs under it (benchmarks
// measure both on one fleet).
func (f *Fleet) SetSynchronous(ctx context.Context, on bool) error {
	if err := patroni.Patch(ctx, f.Primary.RESTAddr(), f.Secrets.PatroniPassword, map[string]any{"synchronous_mode": on}); err != nil {
		return err
	}
	f.cfg.Asynchronous = !on
	return f.waitSynchronous(ctx, on)
}

// waitSynchronous waits until the leader has a synchronous standby (on)
// or none, both in Postgres and in etcd. Patroni 3.0 names the standby in
// Postgres first and in etcd about two seconds later; a standby that goes
// away in between is never dropped (its loop then finds etcd and what it
// picks agree), and commits wait for it to come back. So nothing here
// counts as synchronous until etcd says so.
func (f *Fleet) waitSynchronous(ctx context.Context, on bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var sync int
		conn, err := f.Primary.Connect(ctx, "postgres")
		if err == nil {
			err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_replication WHERE sync_state <> 'async'`).Scan(&sync)
			conn.Close(context.Background())
		}
		var cl patroni.Cluster
		if err == nil {
			cl, err = patroni.GetCluster(ctx, f.Primary.RESTAddr())
		}
		if err == nil && (sync > 0) == on && (cl.Sync() != "") == on {
			return nil
		}
		select {
		case <-ctx.Done():
			if on {
				return fmt.Errorf("no standby of %s streams as synchronous (last: %v): %w", f.Primary.Name(), err, ctx.Err())
			}
			return fmt.Errorf("standbys of %s still synchronous (last: %v): %w", f.Primary.Name(), err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// Leader asks Patroni which member leads, waits until its Postgres takes
// writes, and makes it Primary. It asks each member that runs, in turn:
// each answers from etcd.
func (f *Fleet) Leader(ctx context.Context) (*pgcluster.Cluster, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for {
		if c, err := f.leaderOnce(ctx); err == nil {
			f.Primary = c
			return c, nil
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader: %w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (f *Fleet) leaderOnce(ctx context.Context) (*pgcluster.Cluster, error) {
	last := errors.New("no member runs")
	for _, c := range f.DBs {
		if c == nil || c.Process() == nil {
			continue
		}
		cl, err := patroni.GetCluster(ctx, c.RESTAddr())
		if err != nil {
			last = err
			continue
		}
		l, ok := cl.Leader()
		if !ok || l.State != "running" {
			last = fmt.Errorf("%s sees no running leader", c.Name())
			continue
		}
		m := f.DB(l.Name)
		if m == nil {
			return nil, fmt.Errorf("leader %s is no member of this fleet", l.Name)
		}
		conn, err := m.Connect(ctx, "postgres")
		if err != nil {
			return nil, err
		}
		var recovery bool
		err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovery)
		conn.Close(context.Background())
		if err != nil {
			return nil, err
		}
		if recovery {
			return nil, fmt.Errorf("leader %s is still in recovery", l.Name)
		}
		return m, nil
	}
	return nil, last
}

// DB is the member named name, nil if none is.
func (f *Fleet) DB(name string) *pgcluster.Cluster {
	for _, c := range f.DBs {
		if c != nil && c.Name() == name {
			return c
		}
	}
	return nil
}

// Patronictl runs patronictl with the primary host's member's
// configuration (etcd's address, the REST API's password), e.g.
// Patronictl(ctx, "switchover", "--candidate", "proxy-02", "--force").
func (f *Fleet) Patronictl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "patronictl", append([]string{"-c", f.DBs[0].PatroniConfig()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("patronictl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
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

// AppAdminURLs are the app instances' admin URLs, one per app host (the
// primary host first): /healthz, and /metrics for Secrets.ReadToken.
func (f *Fleet) AppAdminURLs() []string {
	var u []string
	for _, h := range f.appHosts() {
		u = append(u, "http://"+net.JoinHostPort(h, strconv.Itoa(PortAppAdmin)))
	}
	return u
}

// ScrapeTarget is one process Prometheus scrapes, as the monitoring
// role's prometheus.yml has it: the job, the host label and host:port.
// Token says which of Secrets' tokens /metrics needs: "admin" (the
// proxies, mapreduce) or "read" (the app).
type ScrapeTarget struct {
	Job, Host, Addr, Token string
}

// ScrapeTargets are the fleet's processes to scrape: the proxies, the app
// instances and the mapreduce daemon, with the job names of the
// monitoring role's prometheus.yml (shortfleet_proxy, shortfleet_app,
// shortfleet_mapreduce) and host labels after the local hosts' names
// (proxy-01, db-main for the primary host, mapreduce-01). The local
// Prometheus (Config.Monitoring) scrapes these.
func (f *Fleet) ScrapeTargets() []ScrapeTarget {
	var ts []ScrapeTarget
	for i := range f.cfg.Proxies {
		ts = append(ts, ScrapeTarget{"shortfleet_proxy", ProxyID(i), net.JoinHostPort(f.ProxyHost(i), strconv.Itoa(PortAdmin)), "admin"})
	}
	for _, h := range f.appHosts() {
		ts = append(ts, ScrapeTarget{"shortfleet_app", f.hostName(h), net.JoinHostPort(h, strconv.Itoa(PortAppAdmin)), "read"})
	}
	return append(ts, ScrapeTarget{"shortfleet_mapreduce", hostMapreduce, net.JoinHostPort(f.cfg.host(3), strconv.Itoa(PortMapreduce)), "admin"})
}

// hostName names a host of the fleet by what runs on it: db-main (the
// primary host), proxy-0N, or its address.
func (f *Fleet) hostName(addr string) string {
	if addr == f.PrimaryHost() {
		return MainDB
	}
	for i := range f.cfg.Proxies {
		if addr == f.ProxyHost(i) {
			return ProxyID(i)
		}
	}
	return addr
}

// ProxyLogDir is proxy i's access log folder.
func (f *Fleet) ProxyLogDir(i int) string { return f.path("proxy", ProxyID(i), "logs") }

// WaitReplicas waits until every running replica has replayed everything
// the primary has written so far. It fails, naming the replica and where it
// stands, when one makes no progress for pgcluster.ReplayStall: a replica
// that lost the WAL it needs would otherwise hold its caller forever.
func (f *Fleet) WaitReplicas(ctx context.Context) error {
	lsn, err := f.Primary.CurrentLSN(ctx)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range f.DBs {
		if r != f.Primary && r.Process() != nil {
			g.Go(func() error { return r.WaitReplay(gctx, lsn) })
		}
	}
	return g.Wait()
}

// State is what `fleet up` writes to state.json for people and `fleet down`.
type State struct {
	Pid        int      `json:"pid"`
	PrimaryURL string   `json:"primary_url"`
	ShortBase  string   `json:"short_base"`
	Redirects  []string `json:"redirect_urls"`
	Admins     []string `json:"admin_urls"`
	// AppAdmins are the app instances' admin URLs (/metrics: read token).
	AppAdmins   []string `json:"app_admin_urls"`
	Mapreduce   string   `json:"mapreduce_url"`
	Balancer    string   `json:"balancer_url,omitempty"`
	BalancerTLS string   `json:"balancer_tls_url,omitempty"`
	CAFile      string   `json:"ca_file,omitempty"`
	PrimaryDB   string   `json:"primary_db"`
	ReplicaDBs  []string `json:"replica_dbs"`
	// Etcd and Patroni are etcd's client addresses and the members'
	// Patroni REST APIs (GET /cluster shows who leads).
	Etcd    []string `json:"etcd"`
	Patroni []string `json:"patroni"`
	// Prometheus and Alertmanager are their pages, with Config.Monitoring.
	Prometheus   string `json:"prometheus_url,omitempty"`
	Alertmanager string `json:"alertmanager_url,omitempty"`
}

// State describes the running fleet.
func (f *Fleet) State() State {
	s := State{
		Pid: os.Getpid(), PrimaryURL: f.PrimaryURL(), ShortBase: f.ShortBase(),
		Redirects: f.RedirectURLs(), Admins: f.AdminURLs(), AppAdmins: f.AppAdminURLs(), Mapreduce: f.Mapreduce.URL("admin"),
		Balancer: f.BalancerURL(), BalancerTLS: f.BalancerTLSURL(), CAFile: f.CAFile(),
		PrimaryDB: f.Primary.Addr(), Prometheus: f.PrometheusURL(), Alertmanager: f.AlertmanagerURL(),
	}
	for _, r := range f.DBs {
		if r != f.Primary {
			s.ReplicaDBs = append(s.ReplicaDBs, r.Addr())
		}
		s.Patroni = append(s.Patroni, "http://"+r.RESTAddr())
	}
	s.Etcd = f.EtcdEndpoints()
	return s
}

func (f *Fleet) writeState() error {
	data, _ := json.MarshalIndent(f.State(), "", "  ")
	return os.WriteFile(f.path("state.json"), data, 0o644)
}

// Stop stops everything in order: Prometheus and Alertmanager (which would
// see the rest go), mapreduce, the primary app, the proxies (which seal
// their logs), the replicas, the primary database. It logs how long each
// step took.
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
	if f.prometheus != nil || f.alertmanager != nil {
		step("Prometheus and Alertmanager", f.stopMonitoring)
	}
	if f.Mapreduce != nil {
		step("mapreduce", f.Mapreduce.Stop)
	}
	if f.haproxy != nil {
		step("load balancer", f.haproxy.Stop)
	}
	step("app", func() error { return stopAll(f.Apps) })
	step("proxies", func() error { return stopAll(f.Proxies) })
	// The replicas first, so that the leader, stopped last, has no one
	// to hand the leader key to: the same member leads at the next start.
	var replicas []*pgcluster.Cluster
	for _, c := range append(f.DBs[:min(len(f.DBs), 1):min(len(f.DBs), 1)], f.Replicas...) {
		if c != f.Primary {
			replicas = append(replicas, c)
		}
	}
	step("replicas", func() error { return stopAll(replicas) })
	if f.Primary != nil {
		step("primary database", f.Primary.Stop)
	}
	step("etcd", func() error { return stopAll(f.Etcd) })
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
