// Command mapreduce turns the proxies' access log segments into per-link
// stats on the primary: once with -once, on a cron schedule as a daemon, or
// for one day again with -recompute.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"shortfleet/logfmt/ship"
	"shortfleet/mapreduce/internal/daemon"
	"shortfleet/mapreduce/internal/dims"
	"shortfleet/mapreduce/internal/job"
	sfsql "shortfleet/sql"
)

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func main() {
	var (
		dsn         = flag.String("dsn", "", "postgres:// URL of the primary database, without its password (one here is refused: ps shows command lines); default $SHORTFLEET_DSN, which may hold it")
		dbPassFile  = flag.String("db-password-file", "", "file holding the database password (or set SHORTFLEET_DB_PASSWORD)")
		proxies     = flag.String("proxies", env("SHORTFLEET_PROXIES", ""), "comma-separated admin URLs of the proxies")
		schedule    = flag.String("schedule", env("SHORTFLEET_SCHEDULE", "*/5 * * * *"), "cron schedule of runs")
		once        = flag.Bool("once", false, "run once and exit: 0 on success, 1 on failure, 3 if another run holds the lock")
		recompute   = flag.String("recompute", "", "rebuild one day's stats (YYYY-MM-DD, UTC) from the raw segments and exit")
		adminListen = flag.String("admin-listen", env("SHORTFLEET_ADMIN_LISTEN", "127.0.0.1:9100"), "admin listener address (daemon mode)")
		parallel    = flag.Int("parallel", 4, "segments pulled and mapped at once")
		geoip       = flag.String("geoip", env("SHORTFLEET_GEOIP", dims.DefaultGeoIPPath), "MaxMind-format country database (default: ip-location-db's, installed by provisioning/deps.sh); empty: countries unknown")
		truncate    = flag.Bool("truncate-ip", false, "truncate client addresses to /24 (IPv4) and /48 (IPv6) before hashing visitors")
		archive     = flag.String("archive", env("SHORTFLEET_ARCHIVE", ""), "folder to archive ingested records to as Parquet, by day")
		stagePause  = flag.Duration("stage-pause", 0, "hold each stage boundary this long (crash tests only)")
	)
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("app", "mapreduce")
	dbURL, err := sfsql.DSNSource{Flag: *dsn, Env: os.Getenv("SHORTFLEET_DSN"),
		Password: os.Getenv("SHORTFLEET_DB_PASSWORD"), PasswordFile: *dbPassFile}.Resolve()
	if err != nil {
		fatal(logger, err.Error())
	}
	salt := os.Getenv("SHORTFLEET_VISITOR_SALT")
	if len(salt) < 16 {
		fatal(logger, "SHORTFLEET_VISITOR_SALT must hold at least 16 bytes of secret")
	}
	var urls []string
	for _, p := range strings.Split(*proxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			urls = append(urls, p)
		}
	}
	// The proxies refuse to start without a token; a job without one
	// could pull nothing, and its own /metrics would be closed to all.
	token := os.Getenv("SHORTFLEET_ADMIN_TOKEN")
	if token == "" {
		fatal(logger, "SHORTFLEET_ADMIN_TOKEN must be set: the proxies' admin token, to pull and acknowledge their segments")
	}
	ctx := context.Background()
	poolCfg, err := sfsql.PoolConfig(dbURL)
	if err != nil {
		fatal(logger, fmt.Sprintf("database address: %v", err))
	}
	job.Session(poolCfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		fatal(logger, fmt.Sprintf("database address: %v", err))
	}
	defer pool.Close()
	j, err := job.New(job.Config{
		Proxies: urls, Token: token, Parallel: *parallel, Archive: *archive, StagePause: *stagePause,
		Dims: dims.Config{GeoIPPath: *geoip, Salt: []byte(salt), TruncateIP: *truncate},
	}, logger, pool)
	if err != nil {
		fatal(logger, err.Error())
	}
	defer j.Close()

	report := func(what string, t time.Time, res job.Result, err error) int {
		attrs := []any{"run", res.RunID, "took", time.Since(t).Round(time.Millisecond), "segments", res.Segments,
			"records", res.Records, "clicks", res.Clicks, "aggregates", res.Aggregates, "quarantined", res.Quarantined,
			"proxies_down", len(res.ProxiesDown), "failed_segments", len(res.Failed),
			"unknown_version", res.UnknownVersion}
		switch {
		case errors.Is(err, job.ErrLocked):
			logger.Warn(what + " skipped: another run holds the lock")
			return 3
		case err != nil:
			logger.Error(what+" failed", append(attrs, "err", err)...)
			return 1
		default:
			logger.Info(what+" done", attrs...)
			return 0
		}
	}
	if *recompute != "" {
		day, err := time.Parse("2006-01-02", *recompute)
		if err != nil {
			fatal(logger, fmt.Sprintf("-recompute %q: want YYYY-MM-DD", *recompute))
		}
		t := time.Now()
		res, err := j.Recompute(ctx, day)
		os.Exit(report("recompute of "+*recompute, t, res, err))
	}
	if *once {
		t := time.Now()
		res, err := j.Run(ctx)
		if code := report("run", t, res, err); code != 0 {
			os.Exit(code)
		}
		return
	}

	// Watch for SIGTERM before anyone can know we listen: a stop sent
	// right after "listening on" must stop us in order, not kill us.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	ln, err := net.Listen("tcp", *adminListen)
	if err != nil {
		fatal(logger, fmt.Sprintf("listen: %v", err))
	}
	logger.Info("listening on http://"+ln.Addr().String(), "listener", "admin")
	runs := daemon.New(func(ctx context.Context) {
		t := time.Now()
		res, err := j.Run(ctx)
		report("run", t, res, err)
	}, logger)
	reg := prometheus.NewRegistry()
	reg.MustRegister(job.NewCollector(j, runs.Skipped), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("GET /metrics", ship.RequireBearer(token)(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	adminSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go adminSrv.Serve(ln)

	runCtx, cancelRuns := context.WithCancel(ctx)
	c := cron.New()
	if _, err := c.AddFunc(*schedule, func() { runs.Tick(runCtx) }); err != nil {
		fatal(logger, fmt.Sprintf("schedule %q: %v", *schedule, err))
	}
	c.Start()
	logger.Info("daemon started", "schedule", *schedule, "proxies", len(urls))

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
