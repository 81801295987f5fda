package localfleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/patroni"
	"shortfleet/provisioning/pgcluster"
	"time"
)

// creations creates links through the API until stopped, keeping every one
// the API acknowledged and counting refusals by status.
type creations struct {
	mu     sync.Mutex
	acked  []link
	acks   []ack       // when each acknowledged creation was asked and answered
	status map[int]int // HTTP status (0: no answer) -> count
	stop   chan struct{}
	done   chan struct{}
}

func startCreations(t *testing.T, base, key string) *creations {
	cr := &creations{status: map[int]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(cr.done)
		for n := 0; ; n++ {
			select {
			case <-cr.stop:
				return
			case <-time.After(20 * time.Millisecond): // under the per-account rate limit
			}
			target := fmt.Sprintf("https://example.com/drill/%d", n)
			var l link
			asked := time.Now()
			code := postJSON(client, base+"/api/links", key, fmt.Sprintf(`{"target":%q}`, target), &l)
			cr.mu.Lock()
			cr.status[code]++
			if code == http.StatusCreated {
				cr.acked = append(cr.acked, l)
				cr.acks = append(cr.acks, ack{asked, time.Now()})
			}
			cr.mu.Unlock()
		}
	}()
	return cr
}

// ack is one acknowledged creation's request and answer times.
type ack struct{ asked, answered time.Time }

// firstAskedAfter is when the first creation asked after t was
// acknowledged, if one was.
func (cr *creations) firstAskedAfter(t time.Time) (time.Time, bool) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	for _, a := range cr.acks {
		if a.asked.After(t) {
			return a.answered, true
		}
	}
	return time.Time{}, false
}

// longestGap is the longest time between two acknowledgements (or from
// `from` to the first) from `from` on: how long creation paused.
func (cr *creations) longestGap(from time.Time) time.Duration {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	var gap time.Duration
	last := from
	for _, a := range cr.acks {
		if a.answered.Before(from) {
			continue
		}
		gap = max(gap, a.answered.Sub(last))
		last = a.answered
	}
	return gap
}

func (cr *creations) count(status int) int {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.status[status]
}

func (cr *creations) end() {
	close(cr.stop)
	<-cr.done
}

// postJSON posts body and decodes a 2xx answer into out; it returns the
// status, or 0 when no answer came.
func postJSON(client *http.Client, url, key, body string, out any) int {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 && out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return -1
		}
	}
	return resp.StatusCode
}

// TestFailoverDrills are issue 20's drills on a fleet of 3 proxies behind
// HAProxy, the app on two hosts, Patroni over a three-member etcd, with
// redirect and creation load throughout:
//
//  1. the primary's host dies: its Patroni, its Postgres and the app
//     instance on it SIGKILLed together. Patroni promotes the synchronous
//     standby once the dead leader's key expires; the apps find it by
//     their multi-host DSN. Measured: seconds from the kill to the first
//     acknowledged creation asked after it. The host back, its member
//     rejoins as a replica on the new timeline (pg_rewind where its WAL
//     went further).
//  2. one etcd member lost: nothing changes for clients, the leader stays;
//     two lost (no quorum): the primary keeps serving, in Patroni's
//     failsafe mode, because every member answers it; etcd back, the
//     failsafe ends.
//  3. a planned switchover (patronictl switchover) to a standby: the
//     creation pause is measured.
//
// Throughout: no redirect fails, no acknowledged link is lost.
func TestFailoverDrills(t *testing.T) {
	if !localfleet.HAProxyInstalled() {
		t.Fatal("haproxy is not installed: make test installs it (provisioning/deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	f := startFleetWith(t, localfleet.Config{Proxies: 3, ProxyArgs: []string{"-flush-interval", "50ms"}})
	lb, base := f.BalancerURL(), f.PrimaryURL()
	if lb == "" {
		t.Fatal("the fleet started no load balancer")
	}
	key, links := signupWithLinks(t, base, "drill@example.com", 50, "https://example.com/lb/%d")
	rep := &drillReport{}
	tr := startClients(lb, links, 4)
	cr := startCreations(t, base, key)
	waitUntil(t, ctx, func() bool { return cr.count(http.StatusCreated) >= 20 })

	// 1. The primary's host dies.
	old := f.Primary
	oldApp := f.AppOn(old.Host())
	if oldApp == nil {
		t.Fatalf("no app instance on the primary's host %s", old.Host())
	}
	old.Kill()
	oldApp.Kill()
	killed := time.Now() // dead from here: nothing it acknowledged is asked later
	var recovered time.Time
	waitUntil(t, ctx, func() bool {
		var ok bool
		recovered, ok = cr.firstAskedAfter(killed)
		return ok
	})
	leader, err := f.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	failover := recovered.Sub(killed)
	rep.add(t, "primary host killed: %s leads; first creation acknowledged %.1f s after the kill (longest creation pause %.1f s)",
		leader.Name(), failover.Seconds(), cr.longestGap(killed).Seconds())
	if leader == old {
		t.Fatalf("%s still leads after its host died", old.Name())
	}
	tr.waitMore(t, ctx, 300)
	// The host back: Patroni rejoins its member as a replica of the new
	// leader, on the new timeline.
	if err := f.StartDB(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := oldApp.Start(ctx, "http"); err != nil {
		t.Fatal(err)
	}
	waitRejoined(t, ctx, leader, old)
	logData, _ := os.ReadFile(filepath.Join(f.StateDir(), "logs", "postgres-"+old.Name()+".log"))
	rep.add(t, "%s back as a replica on the new timeline (pg_rewind ran: %v)", old.Name(), strings.Contains(string(logData), "pg_rewind: Done!"))

	// 2. etcd members lost.
	n := cr.count(http.StatusCreated)
	f.Etcd[0].Kill()
	waitUntil(t, ctx, func() bool { return cr.count(http.StatusCreated) >= n+30 })
	tr.waitMore(t, ctx, 300)
	if l, err := f.Leader(ctx); err != nil || l != leader {
		t.Fatalf("with one etcd member down the leader changed: %v %v", l, err)
	}
	rep.add(t, "one etcd member lost: %d creations since, leader unchanged", cr.count(http.StatusCreated)-n)
	f.Etcd[1].Kill()
	lostQuorum := time.Now()
	waitUntil(t, ctx, func() bool {
		st, err := patroni.GetStatus(ctx, leader.RESTAddr())
		return err == nil && st.FailsafeActive
	})
	n = cr.count(http.StatusCreated)
	waitUntil(t, ctx, func() bool { return cr.count(http.StatusCreated) >= n+30 })
	st, err := patroni.GetStatus(ctx, leader.RESTAddr())
	if err != nil || st.Role != "master" {
		t.Fatalf("without etcd's quorum the leader is %+v (%v), want it still the primary", st, err)
	}
	rep.add(t, "two etcd members lost: failsafe mode after %.1f s; %d creations since, the primary still serves (longest creation pause %.1f s)",
		time.Since(lostQuorum).Seconds(), cr.count(http.StatusCreated)-n, cr.longestGap(lostQuorum).Seconds())
	for _, e := range f.Etcd[:2] {
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, ctx, func() bool {
		st, err := patroni.GetStatus(ctx, leader.RESTAddr())
		return err == nil && !st.FailsafeActive && st.Role == "master"
	})
	tr.waitMore(t, ctx, 300)

	// 3. A planned switchover to the synchronous standby.
	cl, err := patroni.GetCluster(ctx, leader.RESTAddr())
	if err != nil {
		t.Fatal(err)
	}
	cand := cl.Sync()
	if cand == "" {
		t.Fatalf("no synchronous standby to switch over to: %+v", cl)
	}
	switched := time.Now()
	if out, err := f.Patronictl(ctx, "switchover", "--leader", leader.Name(), "--candidate", cand, "--force"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	waitUntil(t, ctx, func() bool {
		l, err := f.Leader(ctx)
		return err == nil && l.Name() == cand
	})
	n = cr.count(http.StatusCreated)
	waitUntil(t, ctx, func() bool { return cr.count(http.StatusCreated) >= n+30 })
	rep.add(t, "switchover to %s: longest creation pause %.1f s", cand, cr.longestGap(switched).Seconds())

	// 4. The leader's host cut off the network. A write asked of it on
	// its own host after the cut must never be acknowledged: it waits for
	// its synchronous standby, which it cannot reach, until Patroni,
	// unable to renew its leader key, demotes it. The cut comes once
	// etcd names a synchronous standby: only that member may be
	// promoted, and a leader cut off before it has one (in the two
	// seconds after a promotion) is replaced by no one until it is back.
	leader = f.Primary
	waitUntil(t, ctx, func() bool {
		cl, err := patroni.GetCluster(ctx, leader.RESTAddr())
		return err == nil && cl.Sync() != ""
	})
	scratch, err := leader.Connect(ctx, localfleet.Database)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scratch.Exec(ctx, `CREATE TABLE drill_cut (n int)`); err != nil {
		t.Fatal(err)
	}
	scratch.Close(context.Background())
	local, err := leader.ConnectLocal(ctx, localfleet.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close(context.Background())
	roles := sampleRoles(f)
	heal := cutHost(t, leader.Host(), hostPIDs(t, f, leader.Host()))
	cutAt := time.Now()
	type result struct {
		at  time.Time
		err error
	}
	wrote := make(chan result, 1)
	go func() {
		_, err := local.Exec(ctx, `INSERT INTO drill_cut VALUES (1)`)
		wrote <- result{time.Now(), err}
	}()
	var promoted *pgcluster.Cluster
	waitUntil(t, ctx, func() bool {
		for _, c := range f.DBs {
			if at, ok := roles.first(c.Name(), "primary"); ok && c != leader && at.After(cutAt) {
				promoted = c
				return true
			}
		}
		return false
	})
	promotedAt, _ := roles.first(promoted.Name(), "primary")
	w := <-wrote
	if w.err == nil {
		t.Fatalf("the cut-off primary acknowledged a write %.1f s after the cut", w.at.Sub(cutAt).Seconds())
	}
	demotedAt, demoted := roles.first(leader.Name(), "replica")
	rep.add(t, "%s cut off: a write on it blocked %.1f s, then failed: %v", leader.Name(), w.at.Sub(cutAt).Seconds(), w.err)
	if demoted {
		rep.add(t, "%s demoted itself %.1f s after the cut; %s promoted %.1f s after it", leader.Name(), demotedAt.Sub(cutAt).Seconds(), promoted.Name(), promotedAt.Sub(cutAt).Seconds())
	} else {
		rep.add(t, "%s promoted %.1f s after the cut; %s not seen as a replica while cut (stopped)", promoted.Name(), promotedAt.Sub(cutAt).Seconds(), leader.Name())
	}
	n = cr.count(http.StatusCreated)
	waitUntil(t, ctx, func() bool { return cr.count(http.StatusCreated) >= n+30 })
	heal()
	healed := time.Now()
	if _, err := f.Leader(ctx); err != nil {
		t.Fatal(err)
	}
	waitRejoined(t, ctx, f.Primary, leader)
	samples, most := roles.end()
	rep.add(t, "the link back, %s rejoined on the new timeline %.1f s later; %d role samples of every member, at most %d primary at once",
		leader.Name(), time.Since(healed).Seconds(), samples, most)
	if most > 1 {
		t.Fatalf("%d primaries at once during the partition", most)
	}
	check, err := f.Primary.Connect(ctx, localfleet.Database)
	if err != nil {
		t.Fatal(err)
	}
	var cutRows int
	if err := check.QueryRow(ctx, `SELECT count(*) FROM drill_cut`).Scan(&cutRows); err != nil {
		t.Fatal(err)
	}
	check.Close(context.Background())
	if cutRows != 0 {
		t.Fatalf("the write refused on the cut-off primary is on the new one: %d rows", cutRows)
	}

	cr.end()
	tr.end(t, "primary host killed, etcd members lost, switchover, partition")
	cr.mu.Lock()
	statuses := fmt.Sprint(cr.status)
	acked := cr.acked
	cr.mu.Unlock()
	// Every acknowledged link is on the primary, and reaches every proxy.
	if err := f.WaitReplicas(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := f.Primary.Connect(ctx, localfleet.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var missing int
	for _, l := range acked {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM links WHERE target = $1`, l.Target).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged links are missing", missing, len(acked))
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, u := range f.RedirectURLs() {
		for _, l := range acked[len(acked)-5:] {
			resp, err := client.Get(u + "/" + l.Code)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != l.Target {
				t.Fatalf("%s/%s after the drills: %d %q", u, l.Code, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	}
	rep.add(t, "throughout: %d redirects answered, %d failed; %d creations acknowledged, %d lost; creations by status %v",
		tr.answered(), tr.failed.Load(), len(acked), missing, statuses)
	rep.write(t)
	// A database that is failing over is unavailable, not broken: the
	// API answers 503 with Retry-After, never 500.
	if n := cr.count(http.StatusInternalServerError); n > 0 {
		t.Errorf("%d creations answered 500 through the drills; the fleet's logged errors:\n%s", n, loggedErrors(t, f.StateDir()))
	}
}

// loggedErrors are the level=ERROR lines of every log in the fleet's
// state folder, each after its file's name, at most 40.
func loggedErrors(t *testing.T, state string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(state, "logs", "*.log"))
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Logf("read %s: %v", f, err)
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "level=ERROR") && len(out) < 40 {
				out = append(out, filepath.Base(f)+": "+line)
			}
		}
	}
	return strings.Join(out, "\n")
}

// drillReport keeps the drills' figures: logged as they come, and written
// to $SHORTFLEET_FAILOVER_REPORT when set (`make failover-report` puts
// them into README.md).
type drillReport struct{ lines []string }

func (r *drillReport) add(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log("drill: " + line)
	r.lines = append(r.lines, line)
}

func (r *drillReport) write(t *testing.T) {
	path := os.Getenv("SHORTFLEET_FAILOVER_REPORT")
	if path == "" {
		return
	}
	var b strings.Builder
	for _, l := range r.lines {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
}

// waitRejoined waits until member streams from leader on the leader's
// timeline, as Patroni and the member's own WAL receiver both say.
func waitRejoined(t *testing.T, ctx context.Context, leader, member *pgcluster.Cluster) {
	t.Helper()
	waitUntil(t, ctx, func() bool {
		cl, err := patroni.GetCluster(ctx, leader.RESTAddr())
		if err != nil {
			return false
		}
		l, _ := cl.Leader()
		ok := false
		for _, m := range cl.Members {
			if m.Name == member.Name() {
				ok = (m.Role == "replica" || m.Role == "sync_standby") && m.Timeline == l.Timeline
			}
		}
		if !ok {
			return false
		}
		conn, err := member.ConnectLocal(ctx, "postgres")
		if err != nil {
			return false
		}
		defer conn.Close(context.Background())
		var status string
		var tli int
		err = conn.QueryRow(ctx, `SELECT status, received_tli FROM pg_stat_wal_receiver`).Scan(&status, &tli)
		return err == nil && status == "streaming" && tli == l.Timeline
	})
}
