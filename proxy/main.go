// Command proxy answers redirects from the local replica and logs every
// request it answers to compressed Arrow segments on local disk.
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
	"github.com/valyala/fasthttp"

	"shortfleet/logfmt"
	"shortfleet/proxy/admin"
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
		replicaDSN  = flag.String("replica-dsn", env("SHORTFLEET_REPLICA_DSN", ""), "postgres:// URL of the local replica")
		logDir      = flag.String("log-dir", env("SHORTFLEET_LOG_DIR", "logs"), "access log folder")
		flushRows   = flag.Int("flush-rows", 4096, "cut a log batch after this many records")
		flushEvery  = flag.Duration("flush-interval", 200*time.Millisecond, "cut a log batch at least this often: the most a crash loses")
		sealBytes   = flag.Int64("seal-bytes", 64<<20, "seal a segment at this size")
		sealAge     = flag.Duration("seal-age", time.Minute, "seal a segment at this age")
	)
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("proxy", *id)
	// Secrets come from the environment only, never from argv (visible in ps).
	key, err := hex.DecodeString(os.Getenv("SHORTFLEET_CODE_KEY"))
	if err != nil || len(key) < codes.MinKeyLen {
		fatal(logger, "SHORTFLEET_CODE_KEY must hold at least 16 bytes, hex encoded")
	}
	token := os.Getenv("SHORTFLEET_ADMIN_TOKEN")
	if token == "" {
		fatal(logger, "SHORTFLEET_ADMIN_TOKEN must be set")
	}
	codec, err := codes.New(key)
	if err != nil {
		fatal(logger, err.Error())
	}

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, *replicaDSN)
	if err != nil {
		fatal(logger, fmt.Sprintf("replica address: %v", err))
	}
	logw, err := logfmt.NewWriter(logfmt.WriterConfig{
		Dir: *logDir, Proxy: *id, FlushRows: *flushRows, FlushInterval: *flushEvery,
		SealBytes: *sealBytes, SealAge: *sealAge,
	}, logger.With("component", "logfmt"))
	if err != nil {
		fatal(logger, fmt.Sprintf("open access log: %v", err))
	}
	rs := redirect.New(redirect.Config{}, logger, codec, pool, logw)
	srv := &fasthttp.Server{
		Handler:            rs.Handle,
		Name:               "shortfleet",
		ReadTimeout:        10 * time.Second,
		WriteTimeout:       10 * time.Second,
		IdleTimeout:        60 * time.Second,
		MaxRequestBodySize: 4 << 10,
		Logger:             slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatal(logger, fmt.Sprintf("listen: %v", err))
	}
	logger.Info("listening on http://"+ln.Addr().String(), "listener", "redirect")
	adminLn, err := net.Listen("tcp", *adminListen)
	if err != nil {
		fatal(logger, fmt.Sprintf("listen: %v", err))
	}
	logger.Info("listening on http://"+adminLn.Addr().String(), "listener", "admin")
	adminSrv := &http.Server{
		Handler:           admin.Handler(admin.Config{Proxy: *id, LogDir: *logDir, Token: token}, logger),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- adminSrv.Serve(adminLn) }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
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
	step("access log", logw.Close)
	step("admin listener", func() error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := adminSrv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	step("replica pool", func() error { pool.Close(); return nil })
	st := logw.Stats()
	logger.Info("stopped", "requests", rs.Stats().Requests, "logged", st.Written, "dropped", st.Dropped)
}

func fatal(logger *slog.Logger, msg string) {
	logger.Error(msg)
	os.Exit(1)
}
