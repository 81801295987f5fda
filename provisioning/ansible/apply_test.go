package ansible

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/patroni"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/provisioning/settings"
	"shortfleet/provisioning/testhost"
	"shortfleet/provisioning/tlscert"
)

// applyHost is a throwaway host of the real apply, numbered like the local
// fleet's hosts.
type applyHost struct {
	name   string
	n      int            // last octet of its address
	groups []string       // inventory groups
	added  bool           // brought in by add_proxy.yml, not by site.yml
	vars   map[string]any // host variables
}

// The three etcd members are hosts of three kinds, as in the example
// inventory's spirit (no three of one kind); the app runs on db-primary
// and proxy-01 (group apps).
var applyHosts = []applyHost{
	{name: "db-primary", n: 2, groups: []string{"primary", "apps", "etcd"}},
	{name: "mapreduce-01", n: 3, groups: []string{"mapreduce", "monitoring", "etcd"}},
	{name: "lb-01", n: 4, groups: []string{"loadbalancers", "etcd"}},
	{name: "proxy-01", n: 11, groups: []string{"proxies", "apps"}},
	// Its segments are sealed only when it stops or restarts: its clicks
	// reach the stats only if remove_proxy.yml drains it.
	{name: "proxy-02", n: 12, groups: []string{"proxies"}, added: true,
		vars: map[string]any{"proxy_extra_args": []string{"-seal-age", "1h", "-flush-interval", "100ms"}}},
}

// applyAppHost is the primary app's name in the test fleet
// (shortfleet_app_base): the load balancer sends requests for it to the
// primary host's app.
const applyAppHost = "app.shortfleet.test"

// TestApply applies site.yml for real to four throwaway hosts made on this
// machine (package testhost: overlay chroots, each on its own loopback
// address, hostinit standing in for systemd): the Patroni bootstrap host,
// a proxy host with its Patroni replica, a mapreduce host with Prometheus,
// and a load balancer with a certificate from a CA the test makes; three
// of them run etcd. The fleet it configures must have a healthy
// three-member etcd and a Patroni cluster whose leader is db-primary and
// whose replica streams from it, serve the app through HAProxy over HTTPS
// (HTTP/2), answer a redirect through HAProxy over HTTP and HTTPS, and
// count the clicks. With SHORTFLEET_APPLY_ADD_REMOVE set (make
// provision-check), a second proxy host then comes in with add_proxy.yml
// and goes out with remove_proxy.yml, each run twice, the second run
// changing nothing (addRemoveProxy); without it (make test), site.yml is
// applied a second time and must change nothing. Then promote_replica.yml
// switches the leader over to proxy-01 while links are being created:
// db-primary follows it on the new timeline, creation goes on through the
// same apps (their multi-host address), and a second run changes nothing.
// Last, rebuild_replica.yml copies the leader again onto db-primary
// (patronictl reinit), which streams again afterwards.
func TestApply(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the real apply makes hosts with mount and chroot, which needs root; CI runs as root")
	}
	need(t, "ansible-playbook", "haproxy", "promtool")
	// Until shortly before go test's own deadline, so that a host left
	// waiting fails the test with what it waited for.
	deadline := time.Now().Add(10 * time.Minute)
	if d, ok := t.Deadline(); ok {
		deadline = d.Add(-30 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	bin := buildBinaries(t)
	subnet, err := localfleet.FreeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	addr := func(n int) string { return subnet + "." + strconv.Itoa(n) }

	dir := pgcluster.TestDir(t)
	hosts := make([]*testhost.Host, len(applyHosts))
	var wg sync.WaitGroup
	errs := make([]error, len(applyHosts))
	for i, h := range applyHosts {
		wg.Go(func() {
			hosts[i], errs[i] = testhost.Make(ctx, filepath.Join(dir, "hosts"), h.name, addr(h.n), filepath.Join(bin, "hostinit"))
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, h := range hosts {
			if h == nil {
				continue
			}
			if t.Failed() {
				dumpHost(t, h)
			}
			if err := h.Destroy(); err != nil {
				t.Errorf("destroy %s: %v", h.Name, err)
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// The balancer's certificate, for its address (the short links' host)
	// and the app's name, as an ACME client leaves it on the control
	// node: the chain and the key in two files.
	ca, err := tlscert.LoadOrCreateCA(filepath.Join(dir, "ca"))
	must(t, err)
	certChain, certKey := issueSplit(t, ca, filepath.Join(dir, "ca", "balancer"), []string{addr(4), applyAppHost})

	inv := writeInventory(t, filepath.Join(dir, "inventory"), hosts, bin, addr, certChain, certKey)
	recap := applySite(t, ctx, inv, filepath.Join(dir, "apply-1.log"))
	t.Logf("first apply: %v", recap)
	byName := map[string]*testhost.Host{}
	for i, h := range applyHosts {
		byName[h.name] = hosts[i]
	}
	db, p1 := byName["db-primary"], byName["proxy-01"]

	// Patroni's store: every etcd member healthy, three in the cluster.
	var etcdURLs []string
	for _, h := range applyHosts {
		if slices.Contains(h.groups, "etcd") {
			etcdURLs = append(etcdURLs, "http://"+net.JoinHostPort(addr(h.n), "2379"))
		}
	}
	for _, args := range [][]string{{"endpoint", "health"}, {"member", "list"}} {
		out, err := exec.CommandContext(ctx, "etcdctl", append([]string{"--endpoints=" + strings.Join(etcdURLs, ",")}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		want := map[string]string{"health": "is healthy", "list": ", started, "}[args[1]]
		if n := strings.Count(string(out), want); n != 3 {
			t.Fatalf("etcdctl %s: %d members say %q, want 3:\n%s", strings.Join(args, " "), n, want, out)
		}
	}
	// The Postgres cluster: db-primary (the bootstrap host) leads,
	// proxy-01 streams from it over its slot.
	waitCluster(t, ctx, db, "db-primary", []string{"proxy-01"})
	waitSQL(t, ctx, p1, "postgres", "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_host = '"+db.Addr+"' AND slot_name = 'proxy_01')", "t")

	// The fleet it made: the app through the load balancer over HTTPS,
	// where sign-up and creation go; a redirect through the load balancer
	// over HTTP and HTTPS; then the clicks the mapreduce host ingested
	// from the proxy's sealed segment.
	client := lbClient(ca, addr(4))
	app := "https://" + applyAppHost
	resp, err := client.Get(app + "/healthz")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" || resp.ProtoMajor != 2 {
		t.Fatalf("the app through the load balancer over HTTPS: %s %d %q, want HTTP/2 200 ok", resp.Proto, resp.StatusCode, body)
	}
	var acct struct {
		APIKey string `json:"api_key"`
	}
	if code := call(t, client, "POST", app+"/api/signup", "", `{"email":"ops@example.com","password":"a long enough password"}`, &acct); code != 201 {
		t.Fatalf("sign-up on the applied primary: %d", code)
	}
	var link struct {
		Code     string `json:"code"`
		ShortURL string `json:"short_url"`
	}
	if code := call(t, client, "POST", app+"/api/links", acct.APIKey, `{"target":"https://example.com/applied"}`, &link); code != 201 {
		t.Fatalf("create on the applied primary: %d", code)
	}
	lb := "https://" + addr(4)
	if !strings.HasPrefix(link.ShortURL, lb+"/") {
		t.Errorf("short URL %s is not on the load balancer %s", link.ShortURL, lb)
	}
	for _, short := range []string{"http://" + net.JoinHostPort(addr(4), "80") + "/" + link.Code, link.ShortURL} {
		resp, err := client.Get(short)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://example.com/applied" {
			t.Fatalf("redirect through the load balancer, %s: %d %q", short, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	waitClicks(t, ctx, client, app, acct.APIKey, link.Code, 2)
	// Prometheus itself, the proxy, both app instances, mapreduce,
	// HAProxy, both Patroni members.
	waitMonitoring(t, ctx, addr(3), 8)

	// A proxy host in and out again, while db-primary is the primary:
	// add_proxy.yml runs all of site.yml, so its second run is the second
	// apply of site.yml, over the whole fleet, and must change nothing.
	// It takes four playbook runs (about 8 minutes on a quiet 2-core
	// machine), too long for make test: make provision-check sets
	// SHORTFLEET_APPLY_ADD_REMOVE; make test applies site.yml a second
	// time instead.
	if os.Getenv("SHORTFLEET_APPLY_ADD_REMOVE") != "" {
		addRemoveProxy(t, ctx, hosts, inv, client, app, acct.APIKey, link.Code, 2)
	} else {
		log := filepath.Join(dir, "apply-2.log")
		recap := applySite(t, ctx, inv, log)
		t.Logf("second apply: %v", recap)
		unchanged(t, recap, "second site.yml run", log)
	}
	if t.Failed() {
		return
	}
	// A switchover to proxy-01 through promote_replica.yml, while a
	// client creates links through the balancer: the longest spell
	// without a successful creation is the pause the apps saw.
	before := leaderTimeline(t, ctx, db)
	stop := make(chan struct{})
	var pause, created, failed atomic.Int64
	var creating sync.WaitGroup
	creating.Go(func() {
		last := time.Now()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if tryCreate(client, app, acct.APIKey, fmt.Sprintf("https://example.com/switchover/%d", i)) {
				created.Add(1)
				pause.Store(max(pause.Load(), int64(time.Since(last))))
				last = time.Now()
			} else {
				failed.Add(1)
			}
			// Under the app's creation limit (100/s an account).
			time.Sleep(20 * time.Millisecond)
		}
	})
	start := time.Now()
	recap = runPlaybook(t, ctx, inv, filepath.Join(dir, "promote-1.log"), "promote_replica.yml", "-e", "new_primary=proxy-01")
	t.Logf("promote: %v", recap)
	// The old leader rejoins as a replica of the new one, on its timeline.
	after := waitCluster(t, ctx, p1, "proxy-01", []string{"db-primary"})
	t.Logf("switchover: proxy-01 leads on timeline %d (was %d) and db-primary follows, %s after the playbook started", after, before, time.Since(start).Round(100*time.Millisecond))
	if after <= before {
		t.Errorf("timeline %d after the switchover, want a new one after %d", after, before)
	}
	waitSQL(t, ctx, db, "postgres", "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_host = '"+p1.Addr+"')", "t")
	// Creation goes on through the same apps after the switchover.
	for n := created.Load(); created.Load() < n+3; {
		select {
		case <-ctx.Done():
			t.Fatalf("creation did not come back after the switchover: %d created, %d failed", created.Load(), failed.Load())
		case <-time.After(100 * time.Millisecond):
		}
	}
	close(stop)
	creating.Wait()
	t.Logf("switchover pause: %s without a created link (%d created, %d refused during the run)", time.Duration(pause.Load()).Round(time.Millisecond), created.Load(), failed.Load())
	var after2 struct {
		Code string `json:"code"`
	}
	if code := call(t, client, "POST", app+"/api/links", acct.APIKey, `{"target":"https://example.com/after-switchover"}`, &after2); code != http.StatusCreated {
		t.Fatalf("create after the switchover: %d", code)
	}
	resp, err = client.Get(lb + "/" + after2.Code)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("a link created after the switchover: %d through the load balancer", resp.StatusCode)
	}
	log := filepath.Join(dir, "promote-2.log")
	recap = runPlaybook(t, ctx, inv, log, "promote_replica.yml", "-e", "new_primary=proxy-01")
	unchanged(t, recap, "second promote_replica.yml run", log)
	if t.Failed() {
		return
	}

	// rebuild_replica.yml on the replica, db-primary: a fresh copy of the
	// leader (patronictl reinit empties the data directory: the marker
	// left there goes), streaming again, with the link made after the
	// switchover.
	marker := filepath.Join(db.Root, "var/lib/postgresql/15/shortfleet/rebuild-marker")
	must(t, os.WriteFile(marker, nil, 0o644))
	runPlaybook(t, ctx, inv, filepath.Join(dir, "rebuild.log"), "rebuild_replica.yml", "-e", "replica=db-primary")
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("db-primary's data directory was not copied afresh by rebuild_replica.yml (the marker is there: %v)", err)
	}
	waitCluster(t, ctx, p1, "proxy-01", []string{"db-primary"})
	waitSQL(t, ctx, db, "postgres", "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_host = '"+p1.Addr+"')", "t")
	waitSQL(t, ctx, db, "shortfleet", "SELECT count(*) FROM links WHERE target = 'https://example.com/after-switchover'", "1")
}

// tryCreate creates a link through the app and reports whether it was
// created; it does not fail the test, as the switchover's client runs
// beside it.
func tryCreate(client *http.Client, app, apiKey, target string) bool {
	req, _ := http.NewRequest("POST", app+"/api/links", strings.NewReader(`{"target":"`+target+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusCreated
}

// waitCluster waits until the Patroni cluster, as the member on h reads it
// (GET /cluster), has leader leading and every one of replicas running
// as a replica on the leader's timeline, and returns that timeline.
func waitCluster(t *testing.T, ctx context.Context, h *testhost.Host, leader string, replicas []string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rest := net.JoinHostPort(h.Addr, "8008")
	for {
		c, err := patroni.GetCluster(ctx, rest)
		l, ok := c.Leader()
		if err == nil && ok && l.Name == leader && l.State == "running" {
			following := 0
			for _, m := range c.Members {
				if slices.Contains(replicas, m.Name) && (m.Role == "replica" || m.Role == "sync_standby") &&
					(m.State == "running" || m.State == "streaming") && m.Timeline == l.Timeline {
					following++
				}
			}
			if following == len(replicas) {
				return l.Timeline
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Patroni cluster from %s: %+v %v; want %s leading and %v replicas on its timeline", h.Name, c, err, leader, replicas)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// leaderTimeline is the leader's timeline, as the member on h reads it.
func leaderTimeline(t *testing.T, ctx context.Context, h *testhost.Host) int {
	t.Helper()
	c, err := patroni.GetCluster(ctx, net.JoinHostPort(h.Addr, "8008"))
	must(t, err)
	l, ok := c.Leader()
	if !ok {
		t.Fatalf("no leader in %+v", c)
	}
	return l.Timeline
}

// addRemoveProxy brings proxy-02 into the fleet with add_proxy.yml and
// takes it out again with remove_proxy.yml, each run twice (the second
// changes nothing). In between, redirects of the link code (which has
// clicks counted so far) go through the load balancer until proxy-02 has
// served some; since proxy-02 seals its segments only when it stops or
// restarts, its clicks reach the stats only through remove_proxy.yml's
// drain. Last, proxy-02 leaves the inventory, as the operator does.
func addRemoveProxy(t *testing.T, ctx context.Context, hosts []*testhost.Host, inv string, client *http.Client, app, apiKey, code string, clicks int) {
	t.Helper()
	dir := filepath.Dir(filepath.Dir(inv)) // the logs go beside apply-1.log
	var db, lb, p2 *testhost.Host
	for i, h := range applyHosts {
		switch h.name {
		case "db-primary":
			db = hosts[i]
		case "lb-01":
			lb = hosts[i]
		case "proxy-02":
			p2 = hosts[i]
		}
	}
	writeHosts(t, inv, hosts, true)
	for run := 1; run <= 2; run++ {
		log := filepath.Join(dir, fmt.Sprintf("add-proxy-%d.log", run))
		recap := runPlaybook(t, ctx, inv, log, "add_proxy.yml", "-e", "proxy=proxy-02")
		t.Logf("add_proxy.yml, run %d: %v", run, recap)
		if len(recap) != len(applyHosts)+1 { // and localhost
			t.Errorf("add_proxy.yml's recap names %d hosts, want %d (log %s)", len(recap), len(applyHosts)+1, log)
		}
		if run == 2 {
			unchanged(t, recap, "second add_proxy.yml run", log)
		}
	}
	if t.Failed() {
		return
	}
	// Its replica streams from the leader over its own slot.
	waitCluster(t, ctx, db, "db-primary", []string{"proxy-01", "proxy-02"})
	waitSQL(t, ctx, p2, "postgres", "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_host = '"+db.Addr+"' AND slot_name = 'proxy_02')", "t")
	waitSQL(t, ctx, db, "postgres", "SELECT active FROM pg_replication_slots WHERE slot_name = 'proxy_02'", "t")
	if st := lbStatus(t, lb, "proxy-02"); !strings.HasPrefix(st, "UP") {
		t.Errorf("proxy-02 is %q on lb-01 after add_proxy.yml, want UP", st)
	}

	// The load balancer sends it redirects.
	token := testVar(t, inv, "vault_shortfleet_admin_token")
	metrics := "http://" + net.JoinHostPort(p2.Addr, "9090") + "/metrics"
	sent, served := 0, 0
	for served == 0 {
		if sent == 20 {
			t.Fatalf("lb-01 sent none of %d redirects to proxy-02", sent)
		}
		resp, err := client.Get("http://" + net.JoinHostPort(lb.Addr, "80") + "/" + code)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("redirect through lb-01 with proxy-02 added: %d", resp.StatusCode)
		}
		sent++
		served = int(metricValue(t, metrics, token, `shortfleet_proxy_requests_total{status="302"}`))
	}
	t.Logf("lb-01 sent %d of %d redirects to proxy-02", served, sent)
	// Sealed only at the drain: none of its clicks are counted yet.
	if rows := querySQL(t, ctx, db, "shortfleet", "SELECT count(*) FROM ingested_segments WHERE proxy = 'proxy-02'"); rows != "0" {
		t.Errorf("%s segments of proxy-02 ingested before its drain, want none (its seal age is an hour)", rows)
	}

	for run := 1; run <= 2; run++ {
		log := filepath.Join(dir, fmt.Sprintf("remove-proxy-%d.log", run))
		recap := runPlaybook(t, ctx, inv, log, "remove_proxy.yml", "-e", "proxy=proxy-02", "-e", "remove_proxy_ingest_delay=1")
		t.Logf("remove_proxy.yml, run %d: %v", run, recap)
		if run == 1 {
			// Drained before it stopped: every redirect it served is in
			// the ledger at once.
			if rows := querySQL(t, ctx, db, "shortfleet", "SELECT coalesce(sum(rows), 0) FROM ingested_segments WHERE proxy = 'proxy-02'"); rows != strconv.Itoa(served) {
				t.Errorf("proxy-02's ingested segments hold %s records after remove_proxy.yml, want the %d redirects it served", rows, served)
			}
		}
		if run == 2 {
			unchanged(t, recap, "second remove_proxy.yml run", log)
		}
	}
	if n := querySQL(t, ctx, db, "postgres", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'proxy_02'"); n != "0" {
		t.Errorf("proxy-02's slot is still on the leader after remove_proxy.yml")
	}
	// Gone from the Patroni cluster too.
	waitCluster(t, ctx, db, "db-primary", []string{"proxy-01"})
	if c, err := patroni.GetCluster(ctx, net.JoinHostPort(db.Addr, "8008")); err != nil || len(c.Members) != 2 {
		t.Errorf("Patroni cluster after remove_proxy.yml: %+v %v, want db-primary and proxy-01", c, err)
	}
	for _, unit := range []string{"shortfleet-proxy", "patroni"} {
		out, err := p2.Command(ctx, "systemctl", "show", unit).Output()
		must(t, err)
		if !strings.Contains(string(out), "ActiveState=inactive") || !strings.Contains(string(out), "UnitFileState=disabled") {
			t.Errorf("%s on proxy-02 after remove_proxy.yml:\n%s", unit, out)
		}
	}
	if st := lbStatus(t, lb, "proxy-02"); st != "" {
		t.Errorf("proxy-02 is still on lb-01 after remove_proxy.yml: %s", st)
	}
	// Every click counted: proxy-01's, and proxy-02's from the drain.
	waitClicks(t, ctx, client, app, apiKey, code, clicks+sent)
	writeHosts(t, inv, hosts, false)
}

// waitClicks waits until the stats API (of the app at app) counts want
// clicks of a link.
func waitClicks(t *testing.T, ctx context.Context, client *http.Client, app, apiKey, code string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var st struct {
			Clicks int `json:"clicks"`
		}
		call(t, client, "GET", app+"/api/links/"+code+"/stats?range=24h&granularity=hour", apiKey, "", &st)
		if st.Clicks == want {
			return
		}
		if st.Clicks > want {
			t.Fatalf("%d clicks counted for %d redirects", st.Clicks, want)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d clicks counted, want %d", st.Clicks, want)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// unchanged fails the test for each host of a playbook's recap that
// reported a change, with what changed.
func unchanged(t *testing.T, recap map[string]map[string]int, what, log string) {
	t.Helper()
	for host, r := range recap {
		if r["changed"] != 0 {
			data, _ := os.ReadFile(log)
			t.Errorf("%s changed %d things on %s (log %s):\n%s", what, r["changed"], host, log, changedTasks(string(data)))
		}
	}
}

// querySQL runs a query on a host's Postgres as the postgres user.
func querySQL(t *testing.T, ctx context.Context, h *testhost.Host, db, query string) string {
	t.Helper()
	out, err := h.Command(ctx, "runuser", "-u", "postgres", "--", "psql", "-d", db, "-tAc", query).CombinedOutput()
	if err != nil {
		t.Fatalf("%s on %s: %v: %s", query, h.Name, err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitSQL waits until a query on a host answers want.
func waitSQL(t *testing.T, ctx context.Context, h *testhost.Host, db, query, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		out, err := h.Command(ctx, "runuser", "-u", "postgres", "--", "psql", "-d", db, "-tAc", query).CombinedOutput()
		if err == nil && strings.TrimSpace(string(out)) == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s on %s: %v %s, want %s", query, h.Name, err, out, want)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// lbStatus is a server's status (UP, DOWN, MAINT...) in a load balancer's
// proxies backend, from HAProxy's CSV statistics; empty if it has none.
func lbStatus(t *testing.T, lb *testhost.Host, server string) string {
	t.Helper()
	resp, err := http.Get("http://" + net.JoinHostPort(lb.Addr, "8404") + "/stats;csv")
	must(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ",")
		if len(f) > 17 && f[0] == "proxies" && f[1] == server {
			return f[17]
		}
	}
	return ""
}

// metricValue reads one sample of a Prometheus text exposition.
func metricValue(t *testing.T, url, token, series string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, data)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			must(t, err)
			return f
		}
	}
	return 0
}

// testVar reads one variable of the test inventory's own group_vars file.
func testVar(t *testing.T, inv, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(filepath.Dir(inv), "group_vars", "all", "test.yml"))
	must(t, err)
	vars := map[string]any{}
	must(t, json.Unmarshal(data, &vars))
	return fmt.Sprint(vars[name])
}

// buildBinaries builds what the roles install and the control node runs
// (fleet check-cert), as make build does, and the test hosts' init
// (hostinit).
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := pgcluster.TestDir(t)
	out, err := exec.Command("go", "build", "-o", dir+"/", "shortfleet/primary", "shortfleet/proxy", "shortfleet/mapreduce", "shortfleet/provisioning/fleet",
		"shortfleet/provisioning/hostinit/cmd/hostinit").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir
}

// writeInventory writes the test fleet's inventory: the example's groups
// and derived variables, these hosts reached through their chroots, fresh
// secrets, and settings that make a click visible in seconds.
func writeInventory(t *testing.T, dir string, hosts []*testhost.Host, bin string, addr func(int) string, certChain, certKey string) string {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(dir, "group_vars", "all"), 0o755))
	writeHosts(t, filepath.Join(dir, "hosts.yml"), hosts, false)
	// The example's derived variables, then this fleet's: files of
	// group_vars/all are read in name order, the later winning.
	main, err := os.ReadFile("inventory/example/group_vars/all/main.yml")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "group_vars", "all", "main.yml"), main, 0o644))
	vars := map[string]any{
		"vault_shortfleet_code_key":                    pgcluster.RandomSecret(32),
		"vault_shortfleet_csrf_key":                    pgcluster.RandomSecret(32),
		"vault_shortfleet_admin_token":                 pgcluster.RandomSecret(24),
		"vault_shortfleet_read_token":                  pgcluster.RandomSecret(24),
		"vault_shortfleet_visitor_salt":                pgcluster.RandomSecret(24),
		"vault_shortfleet_postgres_app_password":       pgcluster.RandomSecret(16),
		"vault_shortfleet_postgres_superuser_password": pgcluster.RandomSecret(16),
		"vault_shortfleet_patroni_api_password":        pgcluster.RandomSecret(16),
		"shortfleet_bin_dir":                           bin,
		"shortfleet_short_base":                        "https://" + addr(4),
		"shortfleet_app_base":                          "https://" + applyAppHost,
		"shortfleet_tls_cert":                          certChain,
		"shortfleet_tls_key":                           certKey,
		// The hosts share this machine's kernel and network: no live
		// sysctls, and the balancer connects from its own address.
		"common_sysctl_live": false,
		"haproxy_source":     addr(4),
		"postgres_hba_extra_lines": []string{
			"host    replication  postgres  127.0.0.1/32  scram-sha-256",
		},
		// Root on the hosts already; su, for becoming postgres, is there.
		"ansible_become_method": "su",
		// A click within seconds: segments sealed at once, runs every 2s.
		"proxy_extra_args":   []string{"-seal-age", "1s", "-flush-interval", "100ms"},
		"mapreduce_schedule": "@every 2s",
	}
	data, _ := json.MarshalIndent(vars, "", "  ")
	must(t, os.WriteFile(filepath.Join(dir, "group_vars", "all", "test.yml"), data, 0o600))
	// HAProxy wants two descriptors a connection and this machine's hard
	// limit (which its root can't raise) is lower than systemd's default
	// on a real host: the shared settings with a connection bound that
	// fits, as extra vars, which win over the playbooks' vars_files.
	data, _ = json.Marshal(map[string]any{"haproxy_settings": settings.LoadHAProxy().FitDescriptors()})
	must(t, os.WriteFile(filepath.Join(dir, "extra-vars.json"), data, 0o644))
	return filepath.Join(dir, "hosts.yml")
}

// issueSplit issues a certificate of ca for hosts and writes it as an ACME
// client does: the chain to base-fullchain.pem, the key to
// base-privkey.pem.
func issueSplit(t *testing.T, ca *tlscert.CA, base string, hosts []string) (chain, key string) {
	t.Helper()
	must(t, ca.Issue(base+".pem", hosts, 24*time.Hour))
	data, err := os.ReadFile(base + ".pem")
	must(t, err)
	i := bytes.Index(data, []byte("-----BEGIN PRIVATE KEY"))
	chain, key = base+"-fullchain.pem", base+"-privkey.pem"
	must(t, os.WriteFile(chain, data[:i], 0o644))
	must(t, os.WriteFile(key, data[i:], 0o600))
	return chain, key
}

// lbClient is a client of the load balancer at lbAddr: every connection
// goes there, whatever the URL's host (the app's name too, as its DNS
// would resolve), HTTPS trusts only ca and offers HTTP/2, and redirects
// are returned, not followed.
func lbClient(ca *tlscert.CA, lbAddr string) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.Pool()},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				return d.DialContext(ctx, network, net.JoinHostPort(lbAddr, port))
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// Sign-up hashes a password: room for a loaded machine.
		Timeout: 30 * time.Second,
	}
}

// writeHosts writes the test inventory's hosts: those site.yml makes, and
// with added the ones add_proxy.yml brings in too.
func writeHosts(t *testing.T, path string, hosts []*testhost.Host, added bool) {
	t.Helper()
	groups := map[string]map[string]any{}
	for i, h := range applyHosts {
		if h.added && !added {
			continue
		}
		for _, g := range h.groups {
			if groups[g] == nil {
				groups[g] = map[string]any{"hosts": map[string]any{}}
			}
			vars := map[string]any{}
			if g == h.groups[0] {
				vars = map[string]any{"shortfleet_addr": hosts[i].Addr, "ansible_connection": "community.general.chroot", "ansible_host": hosts[i].Root}
				for k, v := range h.vars {
					vars[k] = v
				}
			}
			groups[g]["hosts"].(map[string]any)[h.name] = vars
		}
	}
	groups["postgres"] = map[string]any{"children": map[string]any{"primary": map[string]any{}, "proxies": map[string]any{}}}
	children := map[string]any{}
	for g, v := range groups {
		children[g] = v
	}
	inv, _ := json.MarshalIndent(map[string]any{"all": map[string]any{"children": children}}, "", "  ")
	must(t, os.WriteFile(path, inv, 0o644))
}

var recapRE = regexp.MustCompile(`(?m)^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)`)

// applySite runs site.yml against inv and returns its recap by host; the
// whole output goes to logPath.
func applySite(t *testing.T, ctx context.Context, inv, logPath string) map[string]map[string]int {
	t.Helper()
	recap := runPlaybook(t, ctx, inv, logPath, "site.yml")
	want := 0
	for _, h := range applyHosts {
		if !h.added {
			want++
		}
	}
	if len(recap) != want {
		t.Fatalf("recap names %d hosts, want %d (log %s)", len(recap), want, logPath)
	}
	return recap
}

// runPlaybook runs a playbook against inv and returns its recap by host;
// the whole output goes to logPath.
func runPlaybook(t *testing.T, ctx context.Context, inv, logPath, book string, args ...string) map[string]map[string]int {
	t.Helper()
	start := time.Now()
	cmd := ansibleCmd(t, "ansible-playbook", append([]string{"-i", inv, "-e", "@" + filepath.Join(filepath.Dir(inv), "extra-vars.json"), book}, args...)...)
	// Facts gathered once per host, not once per play; modules piped to
	// the hosts' Python, not copied; each task's time in the log.
	cmd.Env = append(cmd.Env, "ANSIBLE_FORKS=5", "ANSIBLE_PIPELINING=True",
		"ANSIBLE_GATHERING=smart", "ANSIBLE_CACHE_PLUGIN=jsonfile",
		"ANSIBLE_CACHE_PLUGIN_CONNECTION="+filepath.Join(filepath.Dir(inv), "facts"),
		"ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks")
	// The log is written as the playbook runs, so that a test that times
	// out leaves it behind.
	log, err := os.Create(logPath)
	must(t, err)
	defer log.Close()
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, log)
	cmd.Stderr = cmd.Stdout
	err = cmd.Run()
	if err != nil {
		t.Fatalf("ansible-playbook %s: %v (log %s):\n%s", book, err, logPath, failedTasks(out.String()))
	}
	recap := map[string]map[string]int{}
	for _, m := range recapRE.FindAllStringSubmatch(out.String(), -1) {
		r := map[string]int{}
		for i, k := range []string{"ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored"} {
			r[k], _ = strconv.Atoi(m[i+2])
		}
		recap[m[1]] = r
	}
	t.Logf("%s applied in %s; the slowest tasks:\n%s", book, time.Since(start).Round(time.Second), slowestTasks(out.String(), 8))
	return recap
}

// failedTasks picks the failures out of ansible-playbook's output, with
// the task each belongs to.
func failedTasks(out string) string {
	var b strings.Builder
	task := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "TASK [") {
			task = l
		}
		if strings.HasPrefix(l, "fatal:") || strings.HasPrefix(l, "failed:") || strings.Contains(l, "ERROR!") {
			fmt.Fprintf(&b, "%s\n%s\n", task, l)
		}
	}
	if b.Len() == 0 {
		return lastLines(out, 40)
	}
	return b.String()
}

// slowestTasks is the head of profile_tasks' summary.
func slowestTasks(out string, n int) string {
	i := strings.LastIndex(out, "===============================================================================")
	if i < 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(out[i:]), "\n")
	return strings.Join(lines[1:min(len(lines), n+1)], "\n")
}

// changedTasks lists the tasks that reported a change.
func changedTasks(out string) string {
	var b strings.Builder
	task := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "TASK [") || strings.HasPrefix(l, "RUNNING HANDLER [") {
			task = l
		}
		if strings.HasPrefix(l, "changed:") {
			fmt.Fprintf(&b, "%s\n%s\n", task, l)
		}
	}
	return b.String()
}

// call calls a JSON API with client and decodes a 2xx answer into out.
func call(t *testing.T, client *http.Client, method, url, key, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 && out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, url, data, err)
		}
	}
	return resp.StatusCode
}

// dumpHost logs the tail of a host's init and service logs.
func dumpHost(t *testing.T, h *testhost.Host) {
	logs, _ := filepath.Glob(filepath.Join(h.Root, "var/log/hostinit/*.log"))
	pglogs, _ := filepath.Glob(filepath.Join(h.Root, "var/log/postgresql/*.log"))
	for _, l := range append(append([]string{h.InitLog()}, logs...), pglogs...) {
		data, _ := os.ReadFile(l)
		t.Logf("==== %s: %s\n%s", h.Name, filepath.Base(l), lastLines(string(data), 25))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitMonitoring waits until the Prometheus on the monitoring host at addr
// scrapes all of its targets (want, itself among them) successfully and
// sends its alerts to the Alertmanager beside it, which is ready.
func waitMonitoring(t *testing.T, ctx context.Context, addr string, want int) {
	t.Helper()
	// Prometheus scrapes every 15 s: a target down after 2 minutes stays down.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	prom := "http://" + net.JoinHostPort(addr, "9090")
	am := net.JoinHostPort(addr, "9093")
	var last string
	for {
		var targets struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string `json:"labels"`
					Health    string            `json:"health"`
					LastError string            `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		var ams struct {
			Data struct {
				ActiveAlertmanagers []struct {
					URL string `json:"url"`
				} `json:"activeAlertmanagers"`
			} `json:"data"`
		}
		up, sends := 0, false
		err := getJSON(ctx, prom+"/api/v1/targets", &targets)
		if err == nil {
			err = getJSON(ctx, prom+"/api/v1/alertmanagers", &ams)
		}
		if err == nil {
			var down []string
			for _, tg := range targets.Data.ActiveTargets {
				if tg.Health == "up" {
					up++
				} else {
					down = append(down, tg.Labels["job"]+"@"+tg.Labels["host"]+": "+tg.LastError)
				}
			}
			for _, a := range ams.Data.ActiveAlertmanagers {
				sends = sends || strings.Contains(a.URL, "//"+am+"/")
			}
			err = getJSON(ctx, "http://"+am+"/api/v2/status", &struct{}{})
			last = fmt.Sprintf("%d of %d targets up (down: %v), sends to %s: %v, its status: %v", up, len(targets.Data.ActiveTargets), down, am, sends, err)
			if err == nil && up == want && len(targets.Data.ActiveTargets) == want && sends {
				return
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus on %s: %s", addr, last)
		case <-time.After(time.Second):
		}
	}
}

// getJSON decodes the JSON a GET of u answers with 200 into out.
func getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
