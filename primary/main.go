// Command primary is the shortfleet primary app: accounts, link creation
// and stats, in front of the Postgres primary. It applies the schema
// migrations at start-up.
//
//	primary [flags]                 serve
//	primary migrate up|down|version manage the schema and exit
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

	"shortfleet/primary/internal/api"
	sfsql "shortfleet/sql"
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
		listen    = flag.String("listen", env("SHORTFLEET_LISTEN", "127.0.0.1:8000"), "HTTP listener address")
		dsn       = flag.String("dsn", env("SHORTFLEET_DSN", ""), "postgres:// URL of the primary database")
		shortBase = flag.String("short-base", env("SHORTFLEET_SHORT_BASE", "http://127.0.0.1:8080"), "origin of short URLs")
		noMigrate = flag.Bool("no-migrate", false, "do not apply migrations at start-up")
	)
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("app", "primary")
	if *dsn == "" {
		fatal(logger, "-dsn or SHORTFLEET_DSN must name the primary database")
	}
	if flag.Arg(0) == "migrate" {
		os.Exit(migrateCmd(*dsn, flag.Arg(1), logger))
	}
	key, err := hex.DecodeString(os.Getenv("SHORTFLEET_CODE_KEY"))
	if err != nil || len(key) < codes.MinKeyLen {
		fatal(logger, "SHORTFLEET_CODE_KEY must hold at least 16 bytes, hex encoded")
	}
	codec, err := codes.New(key)
	if err != nil {
		fatal(logger, err.Error())
	}
	if !*noMigrate {
		t := time.Now()
		if err := sfsql.MigrateUp(*dsn, logger); err != nil {
			fatal(logger, fmt.Sprintf("migrate: %v", err))
		}
		logger.Info("migrations applied", "took", time.Since(t).Round(time.Millisecond))
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, *dsn)
	if err != nil {
		fatal(logger, fmt.Sprintf("database address: %v", err))
	}
	srv := &http.Server{
		Handler:           api.New(api.Config{ShortBase: *shortBase}, logger, pool, codec).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatal(logger, fmt.Sprintf("listen: %v", err))
	}
	logger.Info("listening on http://"+ln.Addr().String(), "listener", "http")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		logger.Info("stopping", "signal", s.String())
	case err := <-errc:
		logger.Error("listener failed; stopping", "err", err)
	}
	t := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = srv.Shutdown(sctx)
	cancel()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	logger.Info("stopped http listener", "took", time.Since(t).Round(time.Microsecond), "err", err)
	t = time.Now()
	pool.Close()
	logger.Info("stopped database pool", "took", time.Since(t).Round(time.Microsecond))
}

func migrateCmd(dsn, verb string, logger *slog.Logger) int {
	var err error
	switch verb {
	case "up":
		err = sfsql.MigrateUp(dsn, logger)
	case "down":
		err = sfsql.MigrateDown(dsn, logger)
	case "version":
		var v uint
		var dirty bool
		v, dirty, err = sfsql.MigrationVersion(dsn)
		if err == nil {
			fmt.Printf("version %d dirty %v\n", v, dirty)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: primary [flags] migrate up|down|version")
		return 2
	}
	if err != nil {
		logger.Error("migrate "+verb, "err", err)
		return 1
	}
	return 0
}

func fatal(logger *slog.Logger, msg string) {
	logger.Error(msg)
	os.Exit(1)
}
