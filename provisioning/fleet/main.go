// Command fleet runs the whole shortfleet topology on this machine.
//
//	fleet up   [-n 2] [-state .fleet] [-bin bin]   start it and serve until Ctrl-C or `fleet down`
//	fleet down [-state .fleet]                     stop a fleet started by `fleet up`
//	fleet admin [-state .fleet] [-bin bin] EMAIL   make an account of that fleet an admin
//	                                               (`make admin EMAIL=...`)
//	fleet promote -candidates h:5432,h:5432 [-new h:5432]
//	                                               promote the most advanced standby
//	                                               (or -new) and repoint the others;
//	                                               the password comes from PGPASSWORD
//
// `fleet promote` is what the Ansible playbook promote_replica.yml runs on
// the control node, and the same code (package failover) as the local
// fleet's failover drill.
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

	"shortfleet/provisioning/failover"
	"shortfleet/provisioning/localfleet"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "up" && os.Args[1] != "down" && os.Args[1] != "admin" && os.Args[1] != "promote") {
		fmt.Fprintln(os.Stderr, "usage: fleet up|down|admin|promote [flags]")
		os.Exit(2)
	}
	verb := os.Args[1]
	if verb == "promote" {
		os.Exit(promote(os.Args[2:]))
	}
	fs := flag.NewFlagSet("fleet "+verb, flag.ExitOnError)
	state := fs.String("state", ".fleet", "state folder")
	bin := fs.String("bin", "bin", "folder of the primary, proxy and mapreduce binaries")
	n := fs.Int("n", 2, "number of proxy hosts, each with its own replica")
	subnet := fs.String("subnet", "127.0.0", "first three octets of the hosts' loopback addresses")
	schedule := fs.String("schedule", "*/5 * * * *", "mapreduce cron schedule")
	fs.Parse(os.Args[2:])
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("app", "fleet")
	var err error
	switch verb {
	case "up":
		err = up(logger, *state, *bin, *n, *subnet, *schedule)
	case "admin":
		if fs.NArg() != 1 {
			fmt.Fprintln(os.Stderr, "usage: fleet admin [-state .fleet] [-bin bin] EMAIL")
			os.Exit(2)
		}
		var out string
		out, err = localfleet.GrantAdmin(context.Background(), *state, *bin, fs.Arg(0))
		fmt.Fprint(os.Stderr, out)
	default:
		err = down(logger, *state)
	}
	if err != nil {
		logger.Error(verb+" failed", "err", err)
		os.Exit(1)
	}
}

func promote(args []string) int {
	fs := flag.NewFlagSet("fleet promote", flag.ExitOnError)
	candidates := fs.String("candidates", "", "comma-separated host:port of every standby")
	newPrimary := fs.String("new", "", "host:port of the standby to promote; default the most advanced")
	user := fs.String("user", "postgres", "superuser that reaches every standby")
	synchronous := fs.String("synchronous-standby-names", "", "synchronous_standby_names for the new primary, e.g. \"'ANY 1 (*)'\"")
	timeout := fs.Duration("timeout", 2*time.Minute, "bound on the whole promotion")
	fs.Parse(args)
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("app", "fleet")
	if *candidates == "" {
		logger.Error("-candidates is required")
		return 2
	}
	res, err := failover.Promote(context.Background(), failover.Config{
		Candidates: strings.Split(*candidates, ","), New: *newPrimary, User: *user,
		Password: os.Getenv("PGPASSWORD"), SynchronousStandbyNames: *synchronous, Timeout: *timeout,
	}, logger)
	if err != nil {
		logger.Error("promote failed", "err", err)
		return 1
	}
	logger.Info("promoted", "primary", res.Primary, "changed", res.Promoted, "followers", strings.Join(res.Followers, ","), "unreachable", strings.Join(res.Unreachable, ","))
	if res.Promoted {
		fmt.Println("changed: promoted")
	} else {
		fmt.Println("unchanged: already the primary")
	}
	fmt.Printf("new primary: %s\n", res.Primary)
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

func up(logger *slog.Logger, state, bin string, n int, subnet, schedule string) error {
	if pid := readPid(state); alive(pid) {
		return fmt.Errorf("a fleet is up already (pid %d); stop it with make down", pid)
	}
	binAbs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	start := time.Now()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	f, err := localfleet.Start(ctx, localfleet.Config{
		StateDir: state, BinDir: binAbs, Proxies: n, Subnet: subnet, Schedule: schedule,
	}, logger)
	if err != nil {
		return err
	}
	if err := os.WriteFile(pidFile(state), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		f.Stop()
		return err
	}
	defer os.Remove(pidFile(state))
	printURLs(f, time.Since(start), state)
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
		fmt.Fprintf(&b, "  load balancer (HAProxy)     %s   stats %s/stats\n", s.Balancer, f.BalancerStatsURL())
	}
	for i := range s.Redirects {
		fmt.Fprintf(&b, "  %-27s %s   admin %s   replica %s\n", localfleet.ProxyID(i), s.Redirects[i], s.Admins[i], s.ReplicaDBs[i])
	}
	fmt.Fprintf(&b, "  mapreduce daemon            %s\n", s.Mapreduce)
	fmt.Fprintf(&b, "  postgres primary            %s (database %s)\n", s.PrimaryDB, localfleet.Database)
	fmt.Fprintf(&b, "  postgres data               %s\n", f.PGDir())
	fmt.Fprintf(&b, "  logs                        %s\n", filepath.Join(state, "logs"))
	fmt.Fprintf(&b, "\nStop with Ctrl-C, or `make down` from another shell.\n")
	fmt.Print(b.String())
}

func down(logger *slog.Logger, state string) error {
	pid := readPid(state)
	if !alive(pid) {
		logger.Info("no fleet is running", "state", state)
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
	logger.Info("fleet stopped", "pid", pid)
	return nil
}
