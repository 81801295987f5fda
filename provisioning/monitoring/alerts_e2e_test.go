package monitoring_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"shortfleet/provisioning/ansible/roles"
	"shortfleet/provisioning/bintest"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/localfleet/fleettest"
	"shortfleet/provisioning/monitoring"
	"shortfleet/provisioning/pgcluster"
)

// speedup divides the durations an operator waits on: a 1 s scrape
// interval, for: 1m becomes 4 s, group_wait 2 s, group_interval 20 s.
const speedup = 15

var update = flag.Bool("update", false, "write the screenshot of Prometheus's graph page into the repository (prometheus-graph.png)")

func TestMain(m *testing.M) {
	flag.Parse()
	bintest.Main(m)
}

// binDir is a folder of the real binaries, built with -race, as the
// local fleet wants them.
func binDir(t *testing.T) string {
	dir := t.TempDir()
	for _, name := range []string{"primary", "proxy", "mapreduce"} {
		if err := os.Symlink(bintest.Build(t, "shortfleet/"+name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// notice is one alert of one webhook call, as it arrived.
type notice struct {
	at     time.Time
	status string // firing or resolved
	name   string
	host   string
}

func (n notice) key() string { return n.name + "@" + n.host }

// receiver is the test's own webhook: it keeps every alert Alertmanager
// sends.
type receiver struct {
	mu      sync.Mutex
	notices []notice
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var msg struct {
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.NewDecoder(req.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	r.mu.Lock()
	for _, a := range msg.Alerts {
		r.notices = append(r.notices, notice{at: now, status: a.Status, name: a.Labels["alertname"], host: a.Labels["host"]})
	}
	r.mu.Unlock()
}

// since returns the notices that arrived at or after t.
func (r *receiver) since(t time.Time) []notice {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []notice
	for _, n := range r.notices {
		if !n.at.Before(t) {
			out = append(out, n)
		}
	}
	return out
}

// wait returns the first notice of alert key with status that arrived
// at or after t, waiting for it until ctx ends.
func (r *receiver) wait(ctx context.Context, key, status string, t time.Time) (notice, error) {
	for {
		for _, n := range r.since(t) {
			if n.key() == key && n.status == status {
				return n, nil
			}
		}
		select {
		case <-ctx.Done():
			return notice{}, fmt.Errorf("no %s notice of %s: %w", status, key, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fault is one fault the test causes and the alert it must raise.
type fault struct {
	what   string
	alert  string    // alertname@host
	start  time.Time // when the fault began
	fired  time.Time // when its firing notice arrived
	undone time.Time // when the fault was undone
}

// TestAlerts runs a local fleet with Prometheus and Alertmanager as the
// monitoring role deploys them (rules, inhibit rules, scrape
// configuration; timings divided by speedup) and a webhook receiver of its
// own, and causes faults: a proxy killed, the mapreduce daemon stopped, a
// replica's replay paused while the primary writes, the primary's
// database member killed. Each raises its alert at the receiver within
// its for: plus two scrape intervals plus Alertmanager's group_wait, plus
// one interval for delivery (the test's bound; the log gives each), and
// each resolves there once the fault is undone. First, a clean fleet
// raises no alert for as long as the faults take (60 s). Then every
// query of the Grafana dashboard returns data from this Prometheus and
// names only metrics it scraped, and a browser takes Prometheus's graph
// of the replica lag (artifacts/prometheus-graph.png; -update writes the
// README's copy).
func TestAlerts(t *testing.T) {
	recv := &receiver{}
	hook := httptest.NewServer(recv)
	defer hook.Close()
	f := fleettest.Start(t, localfleet.Config{
		BinDir: binDir(t), Proxies: 2,
		Monitoring: true, MonitoringSpeedup: speedup, AlertWebhooks: []string{hook.URL},
	})
	// From the fleet's start on (which took minutes under a loaded make
	// test): about 3 minutes on a quiet machine.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	prom := f.PrometheusURL()

	// The bound of each alert, from the rules Prometheus runs.
	rules, err := os.ReadFile(f.MonitoringFile("shortfleet.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	holds, err := monitoring.For(rules)
	if err != nil {
		t.Fatal(err)
	}
	timing := monitoring.Timings{Speedup: speedup}
	scrape, groupWait := timing.Div(monitoring.ScrapeInterval), timing.Div(monitoring.GroupWait)
	bound := func(alert string) time.Duration {
		name, _, _ := strings.Cut(alert, "@")
		d, ok := holds[name]
		if !ok {
			t.Fatalf("no rule %s", name)
		}
		// for: plus two scrape intervals is the worst case of the scrape's
		// and the evaluation's phase alone; Alertmanager then waits
		// group_wait on purpose, and one more interval and 5 s are left
		// for the alert to reach it and the webhook on a loaded machine
		// (sped up, one interval is a second: too little beside the
		// fleet's tests on 2 cores). An interval or group_wait left
		// unsped still shows: each is then 15 s or more.
		return d + 3*scrape + groupWait + 5*time.Second
	}

	// Every target answers before the clean run starts.
	targets := 1 + 2 + 2 + 1 + 1 + 3 // Prometheus, proxies, apps, mapreduce, HAProxy, Patroni
	waitQuery(ctx, t, prom, "count(up == 1)", func(v float64) bool { return v == float64(targets) })

	// Some redirect traffic (unknown codes: 404s), so that the request
	// counters the dashboard graphs have series.
	for _, u := range f.RedirectURLs() {
		for i := range 5 {
			resp, err := http.Get(fmt.Sprintf("%s/nocode%d", u, i))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}

	primary := f.Primary.Name()
	faults := []*fault{
		{what: "proxy-02 killed", alert: "ShortfleetProxyDown@proxy-02"},
		{what: "mapreduce stopped", alert: "ShortfleetMapreduceDown@mapreduce-01"},
		{what: "replay paused on proxy-01's replica", alert: "ShortfleetReplicaLagging@proxy-01"},
		{what: "primary database member killed", alert: "ShortfleetDatabaseMemberDown@" + primary},
	}
	var slowest time.Duration
	for _, fl := range faults {
		slowest = max(slowest, bound(fl.alert))
	}

	// A clean fleet, for as long as the faults below take (about a
	// minute from the first fault to the last resolution; the log gives
	// both), and at least as long as the slowest alert may take: nothing.
	cleanRun := max(60*time.Second, slowest)
	clean := time.Now()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(cleanRun):
	}
	if n := recv.since(clean); len(n) > 0 {
		t.Fatalf("a clean fleet raised alerts in %s: %v", cleanRun, n)
	}
	t.Logf("clean fleet: no alert in %s", cleanRun)

	// Three faults at once, each on its own alert.
	f.Proxies[1].Kill()
	faults[0].start = time.Now()
	if err := f.Mapreduce.Stop(); err != nil {
		t.Fatal(err)
	}
	faults[1].start = time.Now()
	// The replica replays a commit (its lag is unknown until it has
	// replayed one), then pauses, then receives one it does not replay.
	// Patroni 3.0 resumes a paused replay at its next loop unless the
	// cluster is in maintenance mode: an operator holding a replica
	// pauses Patroni first.
	replica := f.Replicas[0]
	sql(ctx, t, f.Primary, "CREATE TABLE IF NOT EXISTS alert_probe (at timestamptz)", "INSERT INTO alert_probe VALUES (now())")
	if err := f.WaitReplicas(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Patronictl(ctx, "pause", "--wait"); err != nil {
		t.Fatal(err)
	}
	sql(ctx, t, replica, "SELECT pg_wal_replay_pause()")
	sql(ctx, t, f.Primary, "INSERT INTO alert_probe VALUES (now())")
	// The lag alert's condition holds once the proxy reports more than
	// its threshold (10 s): from then on it counts.
	waitProxyLag(ctx, t, f, 0, 10)
	faults[2].start = time.Now()
	for _, fl := range faults[:3] {
		arrived(ctx, t, recv, fl, bound(fl.alert))
	}
	// Undone. A fault's resolved notice may arrive before the next one
	// is undone (a -race mapreduce daemon starts slowly on a loaded
	// machine), so each keeps its own time.
	if err := f.Proxies[1].Start(ctx, "redirect", "admin"); err != nil {
		t.Fatal(err)
	}
	faults[0].undone = time.Now()
	if err := f.Mapreduce.Start(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	faults[1].undone = time.Now()
	sql(ctx, t, replica, "SELECT pg_wal_replay_resume()")
	faults[2].undone = time.Now()
	if _, err := f.Patronictl(ctx, "resume", "--wait"); err != nil {
		t.Fatal(err)
	}

	// The primary's member dies (Patroni and Postgres); Patroni promotes
	// the synchronous standby; the member comes back as a replica.
	old := f.Primary
	old.Kill()
	faults[3].start = time.Now()
	arrived(ctx, t, recv, faults[3], bound(faults[3].alert))
	if _, err := f.Leader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.StartDB(ctx, old); err != nil {
		t.Fatal(err)
	}
	faults[3].undone = time.Now()

	// Each alert resolves: the first resolved notice after its firing
	// one. (The member's comes back while StartDB still waits for it to
	// stream, so its notice may come before StartDB returns: the log
	// then gives a negative time.)
	for _, fl := range faults {
		n, err := recv.wait(ctx, fl.alert, "resolved", fl.fired)
		if err != nil {
			t.Fatalf("%s: %v", fl.what, err)
		}
		t.Logf("%s: %s resolved %s after the fault was undone", fl.what, fl.alert, n.at.Sub(fl.undone).Round(time.Millisecond))
	}
	var others []string
	for _, n := range recv.since(clean) {
		if n.status == "firing" && !slices.ContainsFunc(faults, func(fl *fault) bool { return fl.alert == n.key() }) {
			others = append(others, n.key())
		}
	}
	t.Logf("alerts besides the intended ones while the faults lasted: %v", slices.Compact(slices.Sorted(slices.Values(others))))
	t.Logf("the faults took %s from the first to the last resolution; the clean run %s", time.Since(faults[0].start).Round(time.Second), cleanRun)

	checkDashboard(ctx, t, prom)
	screenshot(ctx, t, prom)
}

// arrived waits for fault's alert at the receiver and fails if it came
// later than bound after the fault began.
func arrived(ctx context.Context, t *testing.T, recv *receiver, fl *fault, bound time.Duration) {
	t.Helper()
	n, err := recv.wait(ctx, fl.alert, "firing", fl.start)
	if err != nil {
		t.Fatalf("%s: %v", fl.what, err)
	}
	fl.fired = n.at
	took := n.at.Sub(fl.start)
	if took > bound {
		t.Errorf("%s: %s arrived %s after the fault, more than its for: plus three scrape intervals plus group_wait plus 5 s (%s)", fl.what, fl.alert, took.Round(time.Millisecond), bound)
		return
	}
	t.Logf("%s: %s arrived after %s (bound %s)", fl.what, fl.alert, took.Round(time.Millisecond), bound)
}

// sql runs statements on a member's postgres database.
func sql(ctx context.Context, t *testing.T, c *pgcluster.Cluster, stmts ...string) {
	t.Helper()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s on %s: %v", s, c.Name(), err)
		}
	}
}

var lagLine = regexp.MustCompile(`(?m)^shortfleet_proxy_replica_lag_seconds ([0-9.e+-]+)$`)

// waitProxyLag waits until proxy i's /metrics reports a replica lag above
// threshold seconds.
func waitProxyLag(ctx context.Context, t *testing.T, f *localfleet.Fleet, i int, threshold float64) {
	t.Helper()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.AdminURLs()[i]+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+f.Secrets.ReadToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if m := lagLine.FindSubmatch(body); m != nil {
				if v, _ := strconv.ParseFloat(string(m[1]), 64); v > threshold {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("proxy %d never reported a replica lag above %g s", i, threshold)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query asks Prometheus's HTTP API for an instant vector (or scalar).
func query(ctx context.Context, prom, q string) ([]sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, prom+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, out.Error)
	}
	if out.Data.ResultType == "scalar" {
		var v [2]any
		err := json.Unmarshal(out.Data.Result, &v)
		return []sample{{Value: v}}, err
	}
	var s []sample
	err = json.Unmarshal(out.Data.Result, &s)
	return s, err
}

// waitQuery waits until q's first value satisfies ok.
func waitQuery(ctx context.Context, t *testing.T, prom, q string, ok func(float64) bool) {
	t.Helper()
	var last any
	for {
		s, err := query(ctx, prom, q)
		last = err
		if err == nil && len(s) > 0 {
			last = s[0].Value[1]
			if v, err := strconv.ParseFloat(fmt.Sprint(s[0].Value[1]), 64); err == nil && ok(v) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: last %v", q, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dashboardPanel is what checkDashboard reads of a Grafana panel.
type dashboardPanel struct {
	Title   string           `json:"title"`
	Panels  []dashboardPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// metricName finds the metric names of a query, once its quoted label
// values are taken out.
var (
	metricName = regexp.MustCompile(`\b(shortfleet|haproxy|patroni)_[a-z0-9_]+\b`)
	quoted     = regexp.MustCompile(`"[^"]*"`)
)

// checkDashboard evaluates every query of the Grafana dashboard against
// Prometheus: each must return data, and each metric it names must be
// among those Prometheus scraped.
func checkDashboard(ctx context.Context, t *testing.T, prom string) {
	t.Helper()
	var d struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(roles.Dashboard, &d); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, prom+"/api/v1/label/__name__/values", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var lv struct {
		Data []string `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&lv)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range lv.Data {
		names[n] = true
	}
	var walk func([]dashboardPanel)
	n := 0
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			for _, q := range p.Targets {
				n++
				for _, m := range metricName.FindAllString(quoted.ReplaceAllString(q.Expr, `""`), -1) {
					if !names[m] {
						t.Errorf("panel %q names %s, which Prometheus has not scraped", p.Title, m)
					}
				}
				s, err := query(ctx, prom, q.Expr)
				if err != nil {
					t.Errorf("panel %q: %v", p.Title, err)
				} else if len(s) == 0 {
					t.Errorf("panel %q: %s returns no data", p.Title, q.Expr)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	t.Logf("dashboard: %d queries evaluated", n)
}

// screenshot has headless Chromium open Prometheus's graph page on the
// proxies' replica lag over the test, and keeps the picture.
func screenshot(ctx context.Context, t *testing.T, prom string) {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, bintest.ChromiumOptions(t, 1280, 900)...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancel()
	page := prom + "/graph?g0.expr=" + url.QueryEscape("shortfleet_proxy_replica_lag_seconds") + "&g0.tab=0&g0.range_input=2m"
	if err := chromedp.Do(bctx,
		chromedp.Navigate(page),
		// The chart (Rickshaw's SVG), drawn once the range query answered.
		chromedp.WaitVisible(`.graph_area svg path`),
	); err != nil {
		t.Fatalf("Prometheus's graph page %s: %v", page, err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "artifacts")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "prometheus-graph.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("prometheus-graph.png", shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
