// Command mapreduce turns the proxies' access log segments into per-link
// stats on the primary: once with -once, or on a cron schedule.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/robfig/cron/v3"

	"shortfleet/mapreduce/internal/job"
)

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func main() {
	var (
		dsn         = flag.String("dsn", env("SHORTFLEET_DSN", ""), "postgres:// URL of the primary database")
		proxies     = flag.String("proxies", env("SHORTFLEET_PROXIES", ""), "comma-separated admin URLs of the proxies")
		schedule    = flag.String("schedule", env("SHORTFLEET_SCHEDULE", "*/5 * * * *"), "cron schedule of runs")
		once        = flag.Bool("once", false, "run once and exit: 0 on success, 1 on failure, 3 if another run holds the lock")
		adminListen = flag.String("admin-listen", env("SHORTFLEET_ADMIN_LISTEN", "127.0.0.1:9100"), "admin listener address (daemon mode)")
		parallel    = flag.Int("parallel", 4, "concurrent segment pulls")
	)
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("app", "mapreduce")
	if *dsn == "" {
		fatal(logger, "-dsn or SHORTFLEET_DSN must name the primary database")
	}
	var urls []string
	for _, p := range strings.Split(*proxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			urls = append(urls, p)
		}
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, *dsn)
	if err != nil {
		fatal(logger, fmt.Sprintf("database address: %v", err))
	}
	defer pool.Close()
	j := job.New(job.Config{Proxies: urls, Token: os.Getenv("SHORTFLEET_ADMIN_TOKEN"), Parallel: *parallel}, logger, pool)

	run := func(ctx context.Context) error {
		t := time.Now()
		res, err := j.Run(ctx)
		attrs := []any{"took", time.Since(t).Round(time.Millisecond), "segments", res.Segments,
			"records", res.Records, "clicks", res.Clicks, "aggregates", res.Aggregates,
			"proxies_down", len(res.ProxiesDown), "failed_segments", len(res.Failed)}
		switch {
		case errors.Is(err, job.ErrLocked):
			logger.Warn("run skipped: another run holds the lock")
		case err != nil:
			logger.Error("run failed", append(attrs, "err", err)...)
		default:
			logger.Info("run done", attrs...)
		}
		return err
	}

	if *once {
		err := run(ctx)
		switch {
		case errors.Is(err, job.ErrLocked):
			os.Exit(3)
		case err != nil:
			os.Exit(1)
		}
		return
	}

	ln, err := net.Listen("tcp", *adminListen)
	if err != nil {
		fatal(logger, fmt.Sprintf("listen: %v", err))
	}
	logger.Info("listening on http://"+ln.Addr().String(), "listener", "admin")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	adminSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go adminSrv.Serve(ln)

	runCtx, cancelRuns := context.WithCancel(ctx)
	cronLog := cron.PrintfLogger(log.New(os.Stderr, "cron: ", log.LstdFlags))
	c := cron.New(cron.WithChain(cron.SkipIfStillRunning(cronLog)))
	if _, err := c.AddFunc(*schedule, func() { _ = run(runCtx) }); err != nil {
		fatal(logger, fmt.Sprintf("schedule %q: %v", *schedule, err))
	}
	c.Start()
	logger.Info("daemon started", "schedule", *schedule, "proxies", len(urls))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	logger.Info("stopping", "signal", s.String())
	t := time.Now()
	// A run in progress is abandoned, not waited for: its transaction rolls
	// back and the next run does its work.
	cancelRuns()
	<-c.Stop().Done()
	logger.Info("stopped scheduler", "took", time.Since(t).Round(time.Microsecond))
	t = time.Now()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = adminSrv.Shutdown(sctx)
	cancel()
	logger.Info("stopped admin listener", "took", time.Since(t).Round(time.Microsecond), "err", err)
}

func fatal(logger *slog.Logger, msg string) {
	logger.Error(msg)
	os.Exit(1)
}
