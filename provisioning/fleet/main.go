// Command fleet runs the whole shortfleet topology on this machine.
//
//	fleet up   [-n 2] [-state .fleet] [-bin bin]   start it and serve until Ctrl-C or `fleet down`
//	fleet down [-state .fleet]                     stop a fleet started by `fleet up`
//	fleet admin [-state .fleet] [-bin bin] EMAIL   make an account of that fleet an admin
//	                                               (`make admin EMAIL=...`)
//	fleet check-cert -cert fullchain.pem [-key privkey.pem] -hosts name,name
//	                                               refuse an expired certificate, one
//	                                               that does not cover every host, or
//	                                               a key that is not its own
//
// Promotion is Patroni's (promote_replica.yml runs patronictl on a
// Postgres host). `fleet check-cert` is what the haproxy role runs
// on the control node before a balancer is given a certificate, and the
// same check (package tlscert) as the local fleet's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/tlscert"
)

// verbs are fleet's subcommands: the one list main dispatches on and its
// usage line names. up, down and admin act on the fleet of this machine
// and share its flags.
var verbs = []struct {
	name string
	run  func(args []string) int
}{
	{"up", local("up", up)},
	{"down", local("down", down)},
	{"admin", local("admin", admin)},
	{"check-cert", checkCert},
}

func main() {
	var names []string
	for _, v := range verbs {
		if len(os.Args) > 1 && os.Args[1] == v.name {
			os.Exit(v.run(os.Args[2:]))
		}
		names = append(names, v.name)
	}
	fmt.Fprintf(os.Stderr, "usage: fleet %s [flags]\n", strings.Join(names, "|"))
	os.Exit(2)
}

// localOpts are the flags of the verbs on the fleet of this machine.
type localOpts struct {
	state, bin       string
	n                int
	subnet, schedule string
	args             []string // what follows the flags
	logger           *slog.Logger
}

// local makes the verb that parses the local fleet's flags, runs do, and
// exits 1 if it fails.
func local(verb string, do func(localOpts) error) func(args []string) int {
	return func(args []string) int {
		fs := flag.NewFlagSet("fleet "+verb, flag.ExitOnError)
		state := fs.String("state", ".fleet", "state folder")
		bin := fs.String("bin", "bin", "folder of the primary, proxy and mapreduce binaries")
		n := fs.Int("n", 2, "number of proxy hosts, each with its own replica")
		subnet := fs.String("subnet", "127.0.0", "first three octets of the hosts' loopback addresses")
		schedule := fs.String("schedule", "*/5 * * * *", "mapreduce cron schedule")
		fs.Parse(args)
		logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("app", "fleet")
		o := localOpts{state: *state, bin: *bin, n: *n, subnet: *subnet, schedule: *schedule, args: fs.Args(), logger: logger}
		if err := do(o); err != nil {
			logger.Error(verb+" failed", "err", err)
			return 1
		}
		return 0
	}
}

func admin(o localOpts) error {
	if len(o.args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: fleet admin [-state .fleet] [-bin bin] EMAIL")
		os.Exit(2)
	}
	out, err := localfleet.GrantAdmin(context.Background(), o.state, o.bin, o.args[0])
	fmt.Fprint(os.Stderr, out)
	return err
}

// checkCert checks a certificate chain and its key before they are
// served, and exits 1 with tlscert's reason on stderr: an Ansible task
// that runs it fails with that message, before HAProxy is touched.
func checkCert(args []string) int {
	fs := flag.NewFlagSet("fleet check-cert", flag.ExitOnError)
	cert := fs.String("cert", "", "PEM file of the certificate chain, the server's certificate first (an ACME client's fullchain.pem)")
	key := fs.String("key", "", "PEM file of its private key (privkey.pem); empty when -cert holds the key too, as HAProxy's crt file does")
	hosts := fs.String("hosts", "", "comma-separated names and addresses the certificate must cover")
	fs.Parse(args)
	if *cert == "" || *hosts == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: fleet check-cert -cert fullchain.pem [-key privkey.pem] -hosts name,name")
		return 2
	}
	names := strings.Split(*hosts, ",")
	var err error
	if *key == "" {
		err = tlscert.Check(*cert, names, time.Now())
	} else {
		err = tlscert.CheckPair(*cert, *key, names, time.Now())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet check-cert:", err)
		return 1
	}
	fmt.Printf("ok: %s covers %s\n", *cert, strings.Join(names, ", "))
	return 0
}

func pidFile(state string) string { return filepath.Join(state, "fleet.pid") }

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func readPid(state string) int {
	data, err := os.ReadFile(pidFile(state))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

func up(o localOpts) error {
	if pid := readPid(o.state); alive(pid) {
		return fmt.Errorf("a fleet is up already (pid %d); stop it with make down", pid)
	}
	binAbs, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	start := time.Now()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	f, err := localfleet.Start(ctx, localfleet.Config{
		StateDir: o.state, BinDir: binAbs, Proxies: o.n, Subnet: o.subnet, Schedule: o.schedule,
		ProxyCountries: true, Monitoring: true,
	}, o.logger)
	if err != nil {
		return err
	}
	if err := os.WriteFile(pidFile(o.state), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		f.Stop()
		return err
	}
	defer os.Remove(pidFile(o.state))
	printURLs(f, time.Since(start), o.state)
	<-ctx.Done()
	fmt.Println("\nstopping the fleet…")
	return f.Stop()
}

func printURLs(f *localfleet.Fleet, took time.Duration, state string) {
	s := f.State()
	var b strings.Builder
	fmt.Fprintf(&b, "\nshortfleet is up (%d proxies, started in %s)\n\n", len(s.Redirects), took.Round(time.Millisecond))
	fmt.Fprintf(&b, "  primary app (sign-up, API)  %s\n", s.PrimaryURL)
	fmt.Fprintf(&b, "  short links                 %s/{code}\n", s.ShortBase)
	if s.Balancer != "" {
		fmt.Fprintf(&b, "                              (and %s/{code})\n", s.Balancer)
		fmt.Fprintf(&b, "  load balancer (HAProxy)     %s   stats %s/stats\n", s.BalancerTLS, f.BalancerStatsURL())
	}
	for i := range s.Redirects {
		fmt.Fprintf(&b, "  %-27s %s   admin %s   postgres %s\n", localfleet.ProxyID(i), s.Redirects[i], s.Admins[i], f.Replicas[i].Addr())
	}
	for i, a := range f.Apps {
		fmt.Fprintf(&b, "  app instance %-14d %s   admin %s\n", i+1, a.URL("http"), a.URL("admin"))
	}
	fmt.Fprintf(&b, "  mapreduce daemon            %s\n", s.Mapreduce)
	if s.Prometheus != "" {
		fmt.Fprintf(&b, "  prometheus                  %s/graph   (alerts %s/alerts)\n", s.Prometheus, s.Prometheus)
		fmt.Fprintf(&b, "  alertmanager                %s\n", s.Alertmanager)
	}
	fmt.Fprintf(&b, "  postgres primary            %s (database %s; Patroni's leader now: %s)\n", s.PrimaryDB, localfleet.Database, f.Primary.Name())
	fmt.Fprintf(&b, "  patroni                     %s/cluster   (patronictl -c %s list)\n", s.Patroni[0], f.DBs[0].PatroniConfig())
	fmt.Fprintf(&b, "  etcd                        %s\n", strings.Join(s.Etcd, " "))
	fmt.Fprintf(&b, "  postgres data               %s\n", f.PGDir())
	fmt.Fprintf(&b, "  logs                        %s\n", filepath.Join(state, "logs"))
	if s.CAFile != "" {
		ca, _ := filepath.Abs(s.CAFile)
		fmt.Fprintf(&b, "\nHTTPS certificates come from this fleet's own CA, %s (made once, kept).\n", ca)
		fmt.Fprintf(&b, "Trust it to browse without warnings:\n")
		fmt.Fprintf(&b, "  curl:      curl --cacert %s %s/login\n", ca, s.PrimaryURL)
		fmt.Fprintf(&b, "  this host: cp %s /usr/local/share/ca-certificates/shortfleet-local.crt && update-ca-certificates\n", ca)
		fmt.Fprintf(&b, "  Chromium:  Settings > Privacy and security > Security > Manage certificates > Authorities > Import\n")
		fmt.Fprintf(&b, "  Firefox:   Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import\n")
	}
	fmt.Fprintf(&b, "\nStop with Ctrl-C, or `make down` from another shell.\n")
	fmt.Print(b.String())
}

func down(o localOpts) error {
	pid := readPid(o.state)
	if !alive(pid) {
		o.logger.Info("no fleet is running", "state", o.state)
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for alive(pid) {
		if time.Now().After(deadline) {
			return errors.New("the fleet did not stop in 3 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	o.logger.Info("fleet stopped", "pid", pid)
	return nil
}
