// Package metrics is the primary app's Prometheus metrics: requests by
// route and status with their latency, links created by source, log-ins
// and refusals by reason, rate-limit refusals by limiter, the database
// pool's use and database errors by class. The front ends count what
// only they know (Created, LoggedIn, Refused); the rest is read from its
// owners (the pool, the store, the limiters) when scraped.
//
// It is served on the app's admin listener, never on the public one:
// Handler answers /metrics only with the read token.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"shortfleet/logfmt/ship"
)

// Where a link was created: the values of
// shortfleet_app_links_created_total's source label.
const (
	SourceAPI     = "api"      // POST /api/links
	SourceWeb     = "web"      // the links page's form
	SourceAPIBulk = "api_bulk" // POST /api/links/bulk, a CSV file
	SourceWebBulk = "web_bulk" // the links page's CSV import
)

// Why a request's credentials were refused: the values of
// shortfleet_app_auth_refusals_total's reason label. Rate limits are
// counted apart (shortfleet_app_rate_limited_total).
const (
	BadPassword    = "bad_password"    // a log-in, or a password change or account deletion, with a wrong password
	UnknownAccount = "unknown_account" // a log-in to an email no account has
	Suspended      = "suspended"       // a log-in, session or API key of a suspended account
	CSRF           = "csrf"            // a form post whose CSRF token is missing or wrong
	CrossOrigin    = "cross_origin"    // a cross-origin post the browser flagged (Sec-Fetch-Site, Origin)
	NoAPIKey       = "no_api_key"      // an API call without Authorization: Bearer
	BadAPIKey      = "bad_api_key"     // an API key that is unknown or revoked
	ReadOnlyKey    = "read_only_key"   // a change asked with a read-scope key
	NotAdmin       = "not_admin"       // an admin page or endpoint asked by someone else
)

var (
	sources = []string{SourceAPI, SourceWeb, SourceAPIBulk, SourceWebBulk}
	reasons = []string{BadPassword, UnknownAccount, Suspended, CSRF, CrossOrigin, NoAPIKey, BadAPIKey, ReadOnlyKey, NotAdmin}
)

// Unmatched is the route label of a request no route matched (404 or
// 405), so that strangers' paths never become label values.
const Unmatched = "unmatched"

// Sources are what the collector reads at scrape time; a nil one is left
// out.
type Sources struct {
	// Pool is the database pool.
	Pool *pgxpool.Pool
	// DBErrors are database errors by class (store.DBErrors).
	DBErrors func() map[string]uint64
	// RateLimited are the requests each limiter refused, by its name.
	RateLimited func() map[string]uint64
}

// Metrics holds the app's metrics. A nil *Metrics counts nothing, so the
// front ends work without one (their own tests).
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	created  *prometheus.CounterVec
	logins   prometheus.Counter
	refusals *prometheus.CounterVec
}

// requestBuckets suit an app whose pages and API calls take from a
// millisecond (a cached key, one row) to seconds (a bulk file, an
// export).
var requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func name(n string) string { return "shortfleet_app_" + n }

// New returns the app's metrics, with the Go runtime's and the process's.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("requests_total"),
			Help: "Requests answered, by route (the pattern that matched, e.g. \"GET /links/{code}\"; \"unmatched\" for none) and status."},
			[]string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name("request_duration_seconds"),
			Help:    "Time from a request's arrival at the app's handler to its answer's end, by route.",
			Buckets: requestBuckets}, []string{"route"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("links_created_total"),
			Help: "Links created, by source: api, web, api_bulk (CSV through the API), web_bulk (CSV import in the browser); a file counts each of its links."},
			[]string{"source"}),
		logins: prometheus.NewCounter(prometheus.CounterOpts{Name: name("logins_total"),
			Help: "Successful log-ins (sessions started by the log-in form)."}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("auth_refusals_total"),
			Help: "Requests refused for their credentials, by reason: bad_password, unknown_account, suspended, csrf, cross_origin, no_api_key, bad_api_key, read_only_key, not_admin."},
			[]string{"reason"}),
	}
	// Every source and reason is there from the start, at 0, so that a
	// rate() over them has a series before the first one happens.
	for _, s := range sources {
		m.created.WithLabelValues(s)
	}
	for _, r := range reasons {
		m.refusals.WithLabelValues(r)
	}
	m.reg.MustRegister(m.requests, m.duration, m.created, m.logins, m.refusals, collector{src},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Created counts n links created from source.
func (m *Metrics) Created(source string, n int) {
	if m != nil {
		m.created.WithLabelValues(source).Add(float64(n))
	}
}

// LoggedIn counts a successful log-in.
func (m *Metrics) LoggedIn() {
	if m != nil {
		m.logins.Inc()
	}
}

// Refused counts a request refused for its credentials, for reason.
func (m *Metrics) Refused(reason string) {
	if m != nil {
		m.refusals.WithLabelValues(reason).Inc()
	}
}

// Instrument counts and times every request next answers, by the route
// mux matches it to: the pattern, never the raw path, so codes and
// strangers' paths cannot grow the label set. It goes outermost, so that
// what is answered before the mux (the HTTPS redirect, a cross-origin
// refusal) is counted too, under the route it was for.
func (m *Metrics) Instrument(mux *http.ServeMux, next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// Asked before next runs, which may change r (a form's body).
		_, route := mux.Handler(r)
		if route == "" {
			route = Unmatched
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK // nothing written: net/http sends 200
		}
		m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// CrossOrigin is p guarding next, with every request p refuses counted
// (reason cross_origin) before p answers it as it always does.
func (m *Metrics) CrossOrigin(p *http.CrossOriginProtection, next http.Handler) http.Handler {
	guarded := p.Handler(next)
	if m == nil {
		return guarded
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.Check(r) != nil {
			m.Refused(CrossOrigin)
		}
		guarded.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status written. Unwrap lets
// http.ResponseController reach the connection's own writer (flushes,
// deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Handler is the app's admin listener: GET /healthz for anyone, GET
// /metrics for the read token only (the token that reads the proxies'
// metrics; Prometheus and the fleet page hold it). The token must not be
// empty.
func (m *Metrics) Handler(readToken string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("GET /metrics", ship.RequireBearer(readToken)(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})))
	return mux
}

type collector struct{ src Sources }

func desc(n, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name(n), help, labels, nil)
}

var (
	dAcquired     = desc("db_pool_acquired_conns", "Database connections in use by a request now.")
	dIdle         = desc("db_pool_idle_conns", "Database connections open and idle now.")
	dTotal        = desc("db_pool_total_conns", "Database connections open now (in use, idle, being opened).")
	dMax          = desc("db_pool_max_conns", "The pool's largest number of connections.")
	dAcquires     = desc("db_pool_acquires_total", "Connections taken from the pool.")
	dEmpty        = desc("db_pool_empty_acquires_total", "Connections taken from the pool that had to wait for one (none idle): a pool too small for the load when it climbs.")
	dWait         = desc("db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection when none was idle.")
	dCanceled     = desc("db_pool_canceled_acquires_total", "Waits for a connection given up (the request's context ended).")
	dDBErrors     = desc("db_errors_total", "Database errors, by class: connection, operator_intervention, insufficient_resources, transaction_rollback, read_only (all answered 503), canceled (the client left), other (answered 500).", "class")
	dRateLimited  = desc("rate_limited_total", "Requests the rate limits refused (429, or 413 for a bulk file over a limit's burst), by limiter: signup_addr, login_addr, login_account, create_account, create_addr.", "limiter")
	collectorDesc = []*prometheus.Desc{dAcquired, dIdle, dTotal, dMax, dAcquires, dEmpty, dWait, dCanceled, dDBErrors, dRateLimited}
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range collectorDesc {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if c.src.Pool != nil {
		st := c.src.Pool.Stat()
		gauge(dAcquired, float64(st.AcquiredConns()))
		gauge(dIdle, float64(st.IdleConns()))
		gauge(dTotal, float64(st.TotalConns()))
		gauge(dMax, float64(st.MaxConns()))
		counter(dAcquires, float64(st.AcquireCount()))
		counter(dEmpty, float64(st.EmptyAcquireCount()))
		counter(dWait, st.EmptyAcquireWaitTime().Seconds())
		counter(dCanceled, float64(st.CanceledAcquireCount()))
	}
	if c.src.DBErrors != nil {
		for class, n := range c.src.DBErrors() {
			counter(dDBErrors, float64(n), class)
		}
	}
	if c.src.RateLimited != nil {
		for limiter, n := range c.src.RateLimited() {
			counter(dRateLimited, float64(n), limiter)
		}
	}
}
