// Command proxy answers redirects from an in-process cache and the local
// replica, and logs every request it answers to compressed Arrow segments
// on local disk.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"shortfleet/logfmt"
	"shortfleet/proxy/internal/accesslog"
	"shortfleet/proxy/internal/admin"
	"shortfleet/proxy/internal/geo"
	"shortfleet/proxy/internal/links"
	"shortfleet/proxy/internal/metrics"
	"shortfleet/proxy/internal/redirect"
	"shortfleet/sql/codes"
)

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func main() {
	var (
		id          = flag.String("id", env("SHORTFLEET_PROXY_ID", "proxy-01"), "this proxy's id, kept in every log record")
		listen      = flag.String("listen", env("SHORTFLEET_LISTEN", "127.0.0.1:8080"), "redirect listener address")
		adminListen = flag.String("admin-listen", env("SHORTFLEET_ADMIN_LISTEN", "127.0.0.1:9090"), "admin listener address")
		logDir      = flag.String("log-dir", env("SHORTFLEET_LOG_DIR", "logs"), "access log folder")
		noLog       = flag.Bool("no-log", false, "do not log requests (for the logging-off benchmark only)")
		flushRows   = flag.Int("flush-rows", 4096, "cut a log batch after this many records")
		flushEvery  = flag.Duration("flush-interval", 200*time.Millisecond, "cut a log batch at least this often: the most a crash loses")
		sealBytes   = flag.Int64("seal-bytes", 64<<20, "seal a segment at this size")
		sealAge     = flag.Duration("seal-age", time.Minute, "seal a segment at this age")
		retention   = flag.Duration("retention", 365*24*time.Hour, "delete sealed segments older than this")
		logRetry    = flag.Duration("log-retry-interval", 5*time.Second, "how often a log folder that could not be opened (unwritable, full) is tried again; requests are answered meanwhile and their records dropped")
		cacheBytes  = flag.Int64("cache-bytes", 256<<20, "bound of the link cache, in bytes")
		pollEvery   = flag.Duration("poll-interval", 100*time.Millisecond, "how often the replica is polled for the watermark, lag and change feed")
		maxLag      = flag.Duration("max-lag", 10*time.Second, "replay lag past which /readyz says not ready")
		workers     = flag.Int("lookup-workers", 4, "replica queries for cache misses that may run at once; waiting misses share the next one")
		lookupWait  = flag.Duration("lookup-timeout", 500*time.Millisecond, "bound of one replica lookup of a cache miss; past it the link is asked of the primary")
		primaryWait = flag.Duration("primary-timeout", 500*time.Millisecond, "bound of one ask of the primary for a link newer than the replica, or when the replica failed; past it the answer is 503, for the balancer to retry elsewhere")
		trusted     = flag.String("trusted-proxies", env("SHORTFLEET_TRUSTED_PROXIES", ""), "comma-separated addresses or CIDRs of load balancers whose PROXY header, X-Forwarded-For and X-Client-Port are believed")
		clockOffset = flag.Duration("clock-offset", 0, "add this to the time of every log record (fault drills: a proxy whose clock is off)")
		proxyProto  = flag.Bool("proxy-protocol", false, "accept the PROXY protocol (v1 or v2) from trusted proxies")
		redact      = flag.String("redact-headers", env("SHORTFLEET_REDACT_HEADERS", ""), "comma-separated request headers (any case) whose values are logged as "+logfmt.Redacted+", besides Authorization, Cookie and Proxy-Authorization, which always are")
		countryDB   = flag.String("country-db", env("SHORTFLEET_COUNTRY_DB", ""), "MaxMind-format country database (GeoLite2 Country or ip-location-db's geo-whois-asn-country) for links' country rules; empty: country rules never match")
	)
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("proxy", *id)
	// Secrets and database addresses come from the environment only, never
	// from argv, which ps shows.
	key, err := hex.DecodeString(os.Getenv("SHORTFLEET_CODE_KEY"))
	if err != nil || len(key) < codes.MinKeyLen {
		fatal(logger, "SHORTFLEET_CODE_KEY must hold at least 16 bytes, hex encoded")
	}
	token := os.Getenv("SHORTFLEET_ADMIN_TOKEN")
	if token == "" {
		fatal(logger, "SHORTFLEET_ADMIN_TOKEN must be set")
	}
	// The read token grants /metrics only (the primary's fleet page);
	// empty, only the admin token reads them.
	readToken := os.Getenv("SHORTFLEET_READ_TOKEN")
	if readToken == token {
		fatal(logger, "SHORTFLEET_READ_TOKEN must differ from SHORTFLEET_ADMIN_TOKEN")
	}
	codec, err := codes.New(key)
	if err != nil {
		fatal(logger, err.Error())
	}
	trustedNets, err := redirect.ParseTrustedProxies(*trusted)
	if err != nil {
		fatal(logger, err.Error())
	}
	redactNames, err := redirect.ParseRedactHeaders(*redact)
	if err != nil {
		fatal(logger, err.Error())
	}

	// The country database is flattened in the background (seconds of
	// CPU for a full one): redirects start at once, and country rules
	// match from the moment it is loaded. A missing file stops the start.
	if *countryDB != "" {
		if _, err := os.Stat(*countryDB); err != nil {
			fatal(logger, fmt.Sprintf("country database: %v", err))
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	replica, err := links.OpenReplica(ctx, os.Getenv("SHORTFLEET_REPLICA_DSN"))
	if err != nil {
		fatal(logger, fmt.Sprintf("SHORTFLEET_REPLICA_DSN: %v", err))
	}
	var primary *pgxpool.Pool
	if dsn := os.Getenv("SHORTFLEET_PRIMARY_DSN"); dsn != "" {
		if primary, err = links.OpenPrimary(ctx, dsn); err != nil {
			fatal(logger, fmt.Sprintf("SHORTFLEET_PRIMARY_DSN: %v", err))
		}
	} else {
		logger.Warn("no SHORTFLEET_PRIMARY_DSN: links created in the last moments 404 until the replica has them")
	}
	resolver, err := links.New(links.Config{CacheBytes: *cacheBytes, PollInterval: *pollEvery, MaxLag: *maxLag, LookupWorkers: *workers,
		LookupTimeout: *lookupWait, PrimaryTimeout: *primaryWait}, logger.With("component", "links"), replica, primary)
	if err != nil {
		fatal(logger, err.Error())
	}
	if err := resolver.WaitPolled(ctx); err != nil {
		fatal(logger, err.Error())
	}
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	go func() { resolver.Run(pollCtx); close(pollDone) }()

	// A log folder that cannot be opened (unwritable, full) does not stop
	// the proxy: it answers, counts the records it drops, and tries again.
	var logw *accesslog.Log     // nil with -no-log: logging off
	var alog redirect.AccessLog // stays a nil interface with -no-log
	if !*noLog {
		logw, err = accesslog.Open(accesslog.Config{
			Writer: logfmt.WriterConfig{
				Dir: *logDir, Proxy: *id, FlushRows: *flushRows, FlushInterval: *flushEvery,
				SealBytes: *sealBytes, SealAge: *sealAge, Retention: *retention,
			},
			RetryInterval: *logRetry,
		}, logger.With("component", "logfmt"))
		if err != nil {
			fatal(logger, fmt.Sprintf("access log: %v", err))
		}
		alog = logw
	}
	rs := redirect.New(redirect.Config{TrustedProxies: trustedNets, ClockOffset: *clockOffset, RedactHeaders: redactNames},
		logger, codec, resolver, alog)
	if *countryDB != "" {
		go func() {
			t0 := time.Now()
			db, err := geo.Open(*countryDB)
			if err != nil {
				logger.Error("country database not loaded: country rules never match", "path", *countryDB, "err", err)
				return
			}
			rs.SetCountries(db)
			logger.Info("country database loaded", "path", *countryDB, "ranges", db.Len(), "took", time.Since(t0).Round(time.Millisecond))
		}()
	}
	srv := rs.HTTPServer(redirect.DefaultLimits(), logger)
	// Watch for SIGTERM before anyone can know we listen: a stop sent
	// right after "listening on" must stop us in order, not kill us.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatal(logger, fmt.Sprintf("listen: %v", err))
	}
	if *proxyProto {
		ln = redirect.ProxyProtocolListener(ln, trustedNets)
	}
	logger.Info("listening on http://"+ln.Addr().String(), "listener", "redirect")
	adminLn, err := net.Listen("tcp", *adminListen)
	if err != nil {
		fatal(logger, fmt.Sprintf("listen: %v", err))
	}
	logger.Info("listening on http://"+adminLn.Addr().String(), "listener", "admin")
	src := metrics.Sources{
		Statuses: rs.Statuses, Links: resolver.Stats, Ready: resolver.Ready, LagNS: resolver.LagNS,
		Watermark: resolver.Watermark, Log: logw.Stats, LogOpen: logw.Opened, Segments: logw.SegmentCounts,
		Redirects: rs.Redirects(),
	}
	adminSrv := &http.Server{
		Handler: admin.Handler(admin.Config{
			Proxy: *id, LogDir: *logDir, Token: token, ReadToken: readToken, Segments: logw, Ready: resolver.Ready,
			Metrics: promhttp.HandlerFor(metrics.Registry(src), promhttp.HandlerOpts{}),
		}, logger),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- adminSrv.Serve(adminLn) }()

	select {
	case s := <-sig:
		logger.Info("stopping", "signal", s.String())
	case err := <-errc:
		logger.Error("listener failed; stopping", "err", err)
	}

	// Stop in order: no new requests, then seal the log, then the rest.
	step := func(name string, f func() error) {
		t := time.Now()
		err := f()
		logger.Info("stopped "+name, "took", time.Since(t).Round(time.Microsecond), "err", err)
	}
	step("redirect listener", func() error {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return srv.ShutdownWithContext(sctx)
	})
	if logw != nil {
		step("access log", logw.Close)
	}
	step("admin listener", func() error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := adminSrv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	step("replica poller", func() error { stopPoll(); <-pollDone; resolver.Close(); return nil })
	step("database pools", func() error {
		replica.Close()
		if primary != nil {
			primary.Close()
		}
		return nil
	})
	st := logw.Stats()
	logger.Info("stopped", "logged", st.Written, "dropped", st.Dropped)
}

func fatal(logger *slog.Logger, msg string) {
	logger.Error(msg)
	os.Exit(1)
}
