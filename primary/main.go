// Command primary is the shortfleet primary app: accounts, links, the JSON
// API and the stats dashboard, in front of the Postgres primary. It applies
// the schema migrations at start-up.
//
//	primary [flags]                  serve
//	primary migrate up|down|version  manage the schema and exit
//	primary grant-admin EMAIL        make an account an admin (fleet page);
//	                                 needs only the database (-dsn or SHORTFLEET_DSN)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"shortfleet/primary/internal/api"
	"shortfleet/primary/internal/https"
	"shortfleet/primary/internal/limit"
	"shortfleet/primary/internal/metrics"
	"shortfleet/primary/internal/store"
	"shortfleet/primary/internal/subcmd"
	"shortfleet/primary/internal/target"
	"shortfleet/primary/internal/web"
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
		listen     = flag.String("listen", env("SHORTFLEET_LISTEN", "127.0.0.1:8000"), "HTTP listener address")
		adminAddr  = flag.String("admin-listen", env("SHORTFLEET_ADMIN_LISTEN", ""), "admin listener address, for the fleet's own network: /healthz, and /metrics for the read token (SHORTFLEET_READ_TOKEN, which it then needs); empty: none")
		dsn        = flag.String("dsn", "", "postgres:// URL of the primary database, without its password (one here is refused: ps shows command lines); default $SHORTFLEET_DSN, which may hold it")
		dbPassFile = flag.String("db-password-file", "", "file holding the database password (or set SHORTFLEET_DB_PASSWORD)")
		shortBase  = flag.String("short-base", env("SHORTFLEET_SHORT_BASE", "http://127.0.0.1:8080"), "origin of short URLs; links to its host are refused")
		noMigrate  = flag.Bool("no-migrate", false, "do not apply migrations at start-up")
		insecure   = flag.Bool("insecure-cookies", false, "serve plain HTTP: cookies without Secure, no redirect to HTTPS, no HSTS (development only; never behind a real balancer)")
		tlsCert    = flag.String("tls-cert", env("SHORTFLEET_TLS_CERT", ""), "PEM certificate (chain) to serve HTTPS on -listen itself, with -tls-key; without both, plain HTTP for a balancer that terminates TLS")
		tlsKey     = flag.String("tls-key", env("SHORTFLEET_TLS_KEY", ""), "PEM private key of -tls-cert")
		appBase    = flag.String("app-base", env("SHORTFLEET_APP_BASE", ""), "the app's public origin (https://app.example.com), where plain HTTP is redirected; default: the request's Host over https")
		blocklist  = flag.String("blocklist", env("SHORTFLEET_BLOCKLIST", ""), "file of domains (one a line) links may not point to")
		proxies    = flag.String("proxies", env("SHORTFLEET_PROXIES", ""), "comma-separated proxy admin URLs, for the fleet page")
		fleetHosts = flag.String("fleet-hosts", env("SHORTFLEET_FLEET_HOSTS", ""), "comma-separated hosts (or URLs) the fleet serves on besides the short base's: proxies, balancers; links to them are refused")
		trusted    = flag.String("trusted-proxies", env("SHORTFLEET_TRUSTED_PROXIES", ""), "comma-separated addresses or CIDRs of load balancers whose X-Forwarded-For names the client, for rate limits, and whose X-Forwarded-Proto says whether it came over HTTPS")
		rSignup    = limit.NewRateFlag("20/1h")
		rLogin     = limit.NewRateFlag("30/1m")
		rLoginUser = limit.NewRateFlag("10/1m")
		rCreate    = limit.NewRateFlag("100/1s")
		rCreateIP  = limit.NewRateFlag("300/1s")
	)
	flag.Var(rSignup, "rate-signup", "sign-ups per client address (N/duration; 0: none)")
	flag.Var(rLogin, "rate-login", "log-in attempts per client address")
	flag.Var(rLoginUser, "rate-login-account", "log-in attempts per account")
	flag.Var(rCreate, "rate-create", "links created per account, through the API and the browser; a bulk file costs one a link, so N is also its largest file")
	flag.Var(rCreateIP, "rate-create-addr", "links created per client address, counted like -rate-create")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("app", "primary")
	dbURL, err := sfsql.DSNSource{Flag: *dsn, Env: os.Getenv("SHORTFLEET_DSN"),
		Password: os.Getenv("SHORTFLEET_DB_PASSWORD"), PasswordFile: *dbPassFile}.Resolve()
	if err != nil {
		fatal(logger, err.Error())
	}
	if cmd, ok := subcmd.Lookup(flag.Arg(0)); ok {
		os.Exit(cmd.Run(dbURL, flag.Args()[1:], os.Stdout, os.Stderr, logger))
	}
	key, err := hex.DecodeString(os.Getenv("SHORTFLEET_CODE_KEY"))
	if err != nil || len(key) < codes.MinKeyLen {
		fatal(logger, "SHORTFLEET_CODE_KEY must hold at least 16 bytes, hex encoded")
	}
	codec, err := codes.New(key)
	if err != nil {
		fatal(logger, err.Error())
	}
	csrfKey, _ := hex.DecodeString(os.Getenv("SHORTFLEET_CSRF_KEY"))
	if len(csrfKey) < 16 {
		csrfKey = make([]byte, 32)
		rand.Read(csrfKey)
		logger.Warn("no SHORTFLEET_CSRF_KEY: forms served before a restart will need a reload")
	}
	policy := &target.Policy{}
	if u, err := url.Parse(*shortBase); err == nil && u.Hostname() != "" {
		policy.ShortHosts = []string{u.Hostname()}
	}
	if *blocklist != "" {
		if policy.Blocked, err = target.LoadBlocklist(*blocklist); err != nil {
			fatal(logger, err.Error())
		}
	}
	if policy.FleetHosts, err = target.ParseFleetHosts(items(*fleetHosts)); err != nil {
		fatal(logger, "-fleet-hosts: "+err.Error())
	}
	policy.FleetHosts = append(policy.FleetHosts, target.OwnHosts(*listen)...)
	trustedNets, err := limit.ParseTrustedProxies(items(*trusted))
	if err != nil {
		fatal(logger, "-trusted-proxies: "+err.Error())
	}
	tlsConfig, err := https.TLSConfig(*tlsCert, *tlsKey)
	if err != nil {
		fatal(logger, "-tls-cert, -tls-key: "+err.Error())
	}
	origin, err := https.ParseOrigin(*appBase)
	if err != nil {
		fatal(logger, "-app-base: "+err.Error())
	}
	readToken := os.Getenv("SHORTFLEET_READ_TOKEN")
	if *adminAddr != "" && readToken == "" {
		fatal(logger, "-admin-listen needs SHORTFLEET_READ_TOKEN: its /metrics answers only to that token")
	}
	if *insecure {
		logger.Warn("-insecure-cookies is a development switch only: cookies without Secure, plain HTTP not redirected, no HSTS")
	}
	// Watch for SIGTERM before migrating, and before anyone can know we
	// listen: a stop sent meanwhile waits for the migration to end and
	// then stops us in order. Killed mid-migration, the schema was left
	// dirty and every start after refused to run (TestApply, when a
	// handler restarted the app as it first migrated).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	ctx := context.Background()
	if !*noMigrate {
		t := time.Now()
		if err := sfsql.MigrateUp(dbURL, logger); err != nil {
			fatal(logger, fmt.Sprintf("migrate: %v", err))
		}
		logger.Info("migrations applied", "took", time.Since(t).Round(time.Millisecond))
	}
	pool, err := sfsql.OpenPool(ctx, dbURL)
	if err != nil {
		fatal(logger, fmt.Sprintf("database address: %v", err))
	}
	st := store.New(pool, codec, logger)
	proxyURLs := items(*proxies)
	// One set of buckets for the API and the browser: neither is a way
	// around the other's limits.
	limits := limit.Limits{SignupPerAddr: rSignup.Limiter(), LoginPerAddr: rLogin.Limiter(), LoginPerAccount: rLoginUser.Limiter(),
		CreatePerAccount: rCreate.Limiter(), CreatePerAddr: rCreateIP.Limiter(), TrustedProxies: trustedNets}
	m := metrics.New(metrics.Sources{Pool: pool, DBErrors: st.DBErrors, RateLimited: limits.Refusals})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	api.New(api.Config{ShortBase: *shortBase, Policy: policy, Limits: limits, Metrics: m}, logger, st).Register(mux)
	if readToken == "" && len(proxyURLs) > 0 {
		logger.Warn("no SHORTFLEET_READ_TOKEN: the fleet page shows the proxies' readiness but not their metrics")
	}
	ui, err := web.New(web.Config{ShortBase: *shortBase, Policy: policy, Secure: !*insecure, CSRFKey: csrfKey,
		Proxies: proxyURLs, ReadToken: readToken,
		Limits: limits, Metrics: m,
	}, logger, st)
	if err != nil {
		fatal(logger, err.Error())
	}
	ui.Register(mux)
	h := m.CrossOrigin(http.NewCrossOriginProtection(), ui.Session(mux))
	if !*insecure {
		h = https.Require(h, trustedNets, origin)
	}
	srv := web.HTTPServer(m.Instrument(mux, web.SecurityHeaders(h)), web.DefaultServerLimits(), logger)
	srv.TLSConfig = tlsConfig
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatal(logger, fmt.Sprintf("listen: %v", err))
	}
	errc := make(chan error, 1)
	if tlsConfig != nil {
		logger.Info("listening on https://"+ln.Addr().String(), "listener", "http")
		go func() { errc <- srv.ServeTLS(ln, "", "") }() // the pair is in TLSConfig; HTTP/2 is offered
	} else {
		logger.Info("listening on http://"+ln.Addr().String(), "listener", "http")
		go func() { errc <- srv.Serve(ln) }()
	}

	// The admin listener: metrics for Prometheus (and health), never on
	// the public listener, which the balancers expose.
	adminSrv := &http.Server{Handler: m.Handler(readToken), ReadHeaderTimeout: 10 * time.Second}
	if *adminAddr != "" {
		aln, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			fatal(logger, fmt.Sprintf("listen: %v", err))
		}
		logger.Info("listening on http://"+aln.Addr().String(), "listener", "admin")
		go func() { errc <- adminSrv.Serve(aln) }()
	}

	select {
	case s := <-sig:
		logger.Info("stopping", "signal", s.String())
	case err := <-errc:
		logger.Error("listener failed; stopping", "err", err)
	}
	step := func(name string, f func() error) {
		t := time.Now()
		err := f()
		logger.Info("stopped "+name, "took", time.Since(t).Round(time.Microsecond), "err", err)
	}
	step("http listener", func() error {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	step("admin listener", func() error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return adminSrv.Shutdown(sctx)
	})
	step("link writer", func() error { st.Close(); return nil })
	step("database pool", func() error { pool.Close(); return nil })
}

func fatal(logger *slog.Logger, msg string) {
	logger.Error(msg)
	os.Exit(1)
}
