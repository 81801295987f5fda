package localfleet_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"shortfleet/logfmt"
	"shortfleet/logfmt/ship"
	"shortfleet/provisioning/localfleet"
	"shortfleet/provisioning/proc"
	"shortfleet/sql/codes"
)

// clientCounts sends redirects through the load balancer from a few clients
// until stopped, keeping per link how many were answered with the right
// redirect, and counting failures.
type clientCounts struct {
	url        string
	links      []link
	clients    int
	ok         []atomic.Int64 // by link index
	failed     atomic.Int64
	mu         sync.Mutex
	firstFails []string
	stop       chan struct{}
	wg         sync.WaitGroup
	rounds     uint64
	pace       time.Duration // pause between a client's requests
}

func startClients(url string, links []link, clients int) *clientCounts {
	cc := &clientCounts{url: url, links: links, clients: clients, ok: make([]atomic.Int64, len(links))}
	cc.resume()
	return cc
}

// resume starts the clients (again), keeping the counts.
func (cc *clientCounts) resume() {
	cc.stop = make(chan struct{})
	cc.rounds++
	url, links, clients, round := cc.url, cc.links, cc.clients, cc.rounds
	tr := http.DefaultTransport.(*http.Transport).Clone() // trusts the fleets' CA (TestMain)
	tr.MaxIdleConnsPerHost = clients
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     tr,
		Timeout:       10 * time.Second,
	}
	for c := range clients {
		cc.wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), round))
			for {
				select {
				case <-cc.stop:
					return
				case <-time.After(cc.pace):
				}
				i := rng.IntN(len(links))
				req, _ := http.NewRequest(http.MethodGet, url+"/"+links[i].Code, nil)
				req.Header.Set("User-Agent", chromeUA)
				resp, err := client.Do(req)
				why := ""
				if err != nil {
					why = err.Error()
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != links[i].Target {
						why = fmt.Sprintf("GET /%s: %d", links[i].Code, resp.StatusCode)
					}
				}
				if why == "" {
					cc.ok[i].Add(1)
					continue
				}
				cc.failed.Add(1)
				cc.mu.Lock()
				if len(cc.firstFails) < 5 {
					cc.firstFails = append(cc.firstFails, why)
				}
				cc.mu.Unlock()
			}
		})
	}
}

func (cc *clientCounts) total() (n int64) {
	for i := range cc.ok {
		n += cc.ok[i].Load()
	}
	return n + cc.failed.Load()
}

// waitMore waits until the clients have had n more answers.
func (cc *clientCounts) waitMore(t *testing.T, ctx context.Context, n int64) {
	t.Helper()
	target := cc.total() + n
	waitUntil(t, ctx, func() bool { return cc.total() >= target })
}

// pause stops the clients and waits for their last answers.
func (cc *clientCounts) pause() {
	close(cc.stop)
	cc.wg.Wait()
}

// end stops the clients and fails the test if any request failed.
func (cc *clientCounts) end(t *testing.T, what string) {
	t.Helper()
	cc.pause()
	t.Logf("%s: %d redirects answered, %d failed %v", what, cc.answered(), cc.failed.Load(), cc.firstFails)
	if n := cc.failed.Load(); n != 0 {
		t.Errorf("%s: %d redirects failed, want 0: %v", what, n, cc.firstFails)
	}
}

func (cc *clientCounts) answered() (n int64) {
	for i := range cc.ok {
		n += cc.ok[i].Load()
	}
	return n
}

// metricOf reads one sample of a Prometheus text exposition: the line that
// starts with series (name with its labels, as exposed).
func metricOf(url, token, series string) (float64, error) {
	m, err := ship.Client{BaseURL: url, Token: token}.Metrics(context.Background())
	if err != nil {
		return 0, err
	}
	v, ok := m[series]
	if !ok {
		return 0, fmt.Errorf("%s: no %s", url, series)
	}
	return v, nil
}

// faultFigures is what one kind of fault did, for the log and README.
type faultFigures struct {
	name             string
	times            int
	redirects        int64 // answered while it ran
	failed           int64 // of those, failed
	created, refused int   // creations acknowledged / answered 503 while it ran
	unanswered       int   // creations that got no answer (connection refused)
}

// TestFaultsUnderLoad is the fault drill of issue 8. A fleet of 3 proxies
// behind HAProxy, synchronous replication, the mapreduce daemon every 2 s;
// one proxy's clock runs 4 minutes fast and its log lives on a 16 MiB
// disk. Under steady redirect and creation traffic it goes through every
// fault twice:
//
//   - SIGKILL of a proxy, of a replica, of the primary app, of the primary
//     database, of the mapreduce daemon (mid-run where the kill lands so);
//   - the primary database down for 5 s, longer than a mapreduce interval;
//   - the small log disk filled, then freed;
//   - a sealed segment corrupted on disk before mapreduce pulls it.
//
// Then it checks what clients saw (no failed redirect: HAProxy retries;
// creations answered 201 or 503 only), that no acknowledged link is lost,
// and that the stats equal, per link and hour, the clicks the proxies have
// on disk (none counted twice, none missed), the quarantined segment
// excepted: once before any proxy is restarted, so that what a running
// proxy recovered must reach the stats by itself, and again after. Clicks lost between a client's answer and the disk are
// reported: records a SIGKILLed proxy had not flushed, and those dropped
// while the disk was full (counted by the proxy).
func TestFaultsUnderLoad(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the full-disk fault mounts a small tmpfs, which needs root; make test runs as root in CI")
	}
	if !localfleet.HAProxyInstalled() {
		t.Fatal("haproxy is not installed: make test installs it (provisioning/deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()

	smallDisk := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", smallDisk).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", smallDisk).Run() })
	const skewed = 2 // proxy-03: clock 4 minutes fast, log on the small disk
	const flush = 50 * time.Millisecond
	f := startFleetWith(t, localfleet.Config{
		Proxies: 3, Schedule: "@every 2s",
		ProxyArgs: []string{"-flush-interval", flush.String(), "-seal-age", "1s", "-log-retry-interval", "200ms"},
		ProxyArgsFor: func(i int) []string {
			if i == skewed {
				return []string{"-clock-offset", "4m", "-log-dir", smallDisk}
			}
			return nil
		},
	})
	logDirs := []string{f.ProxyLogDir(0), f.ProxyLogDir(1), smallDisk}
	token := f.Secrets.AdminToken
	admin := f.AdminURLs()
	base := f.PrimaryURL()
	key, links := signupWithLinks(t, base, "faults@example.com", 40, "https://example.com/fault/%d")
	codeOf := map[int64]string{}
	codec := fleetCodec(t, f)
	for _, l := range links {
		id, err := codec.DecodeString(l.Code)
		if err != nil {
			t.Fatal(err)
		}
		codeOf[id] = l.Code
	}

	cc := startClients(f.BalancerURL(), links, 4)
	cr := startCreations(t, base, key)
	cc.waitMore(t, ctx, 300)
	createdAfter := func(n int) {
		t.Helper()
		target := cr.count(http.StatusCreated) + n
		waitUntil(t, ctx, func() bool { return cr.count(http.StatusCreated) >= target })
	}
	var figures []faultFigures
	fault := func(name string, times int, do func(rep int)) {
		t.Helper()
		fig := faultFigures{name: name, times: times}
		r0, f0 := cc.total(), cc.failed.Load()
		c0, s0, u0 := cr.count(http.StatusCreated), cr.count(http.StatusServiceUnavailable), cr.count(0)
		for rep := range times {
			do(rep)
			cc.waitMore(t, ctx, 200) // steady traffic between faults
		}
		fig.redirects, fig.failed = cc.total()-r0, cc.failed.Load()-f0
		fig.created, fig.refused = cr.count(http.StatusCreated)-c0, cr.count(http.StatusServiceUnavailable)-s0
		fig.unanswered = cr.count(0) - u0
		figures = append(figures, fig)
		t.Logf("%s ×%d: %d redirects, %d failed; %d links created, %d refused with 503, %d unanswered", name, times,
			fig.redirects, fig.failed, fig.created, fig.refused, fig.unanswered)
	}
	restarted := func(p interface{ Restarts() int }, before int) {
		t.Helper()
		waitUntil(t, ctx, func() bool { return p.Restarts() > before })
	}
	// crash SIGKILLs a supervised process and waits for its restart.
	crash := func(p *proc.Process) {
		t.Helper()
		n := p.Restarts()
		p.Signal(syscall.SIGKILL)
		restarted(p, n)
	}

	// Each proxy stopped with SIGTERM and started again: it seals its open
	// segment, so everything answered is on disk.
	sealAll := func() {
		t.Helper()
		for _, p := range f.Proxies {
			if err := p.Stop(); err != nil {
				t.Fatalf("stop %s: %v", p.Name, err)
			}
			if err := p.Start(ctx, "redirect", "admin"); err != nil {
				t.Fatal(err)
			}
		}
	}
	onDiskTotal := func(skip string) (n int64) {
		m := map[hourKey]counts{}
		for _, dir := range logDirs {
			addLogged(t, dir, skip, codeOf, m)
		}
		for _, c := range m {
			n += c.clicks
		}
		return n
	}

	// A proxy restarted with SIGTERM under load loses nothing: after the
	// restarts, pause the clients, seal, and compare.
	fault("proxy SIGTERM and restart", 2, func(rep int) {
		p := f.Proxies[rep]
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx, "redirect", "admin"); err != nil {
			t.Fatal(err)
		}
		if err := f.WaitBalanced(ctx, 3); err != nil {
			t.Fatal(err)
		}
	})
	cc.pause()
	sealAll()
	lostTerm := cc.answered() - onDiskTotal("")
	t.Logf("after 2 SIGTERM restarts under load: %d redirects answered, %d clicks lost", cc.answered(), lostTerm)
	if lostTerm != 0 {
		t.Errorf("%d clicks lost to SIGTERM restarts, want 0", lostTerm)
	}
	if err := f.WaitBalanced(ctx, 3); err != nil {
		t.Fatal(err)
	}
	cc.resume()

	proxyKills := 0
	fault("proxy SIGKILL", 2, func(rep int) {
		crash(f.Proxies[rep%2].Process()) // not proxy-03: its drop counter must survive
		proxyKills++
		if err := f.WaitBalanced(ctx, 3); err != nil {
			t.Fatal(err)
		}
	})
	fault("replica SIGKILL", 2, func(rep int) {
		// Its Postgres: Patroni starts it again.
		r := f.Replicas[rep]
		if err := r.CrashServer(); err != nil {
			t.Fatal(err)
		}
		if err := r.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.WaitBalanced(ctx, 3); err != nil {
			t.Fatal(err)
		}
	})
	fault("primary app SIGKILL", 2, func(int) {
		crash(f.PrimaryApp.Process())
		createdAfter(3)
	})
	fault("primary database SIGKILL", 2, func(int) {
		// Patroni, still holding the leader key, starts it again.
		if err := f.Primary.CrashServer(); err != nil {
			t.Fatal(err)
		}
		createdAfter(3)
	})
	fault("primary's Patroni SIGKILL", 1, func(int) {
		// Postgres goes on; the supervisor starts Patroni again, which
		// takes it over, still holding the leader key.
		crash(f.Primary.Process())
		createdAfter(3)
	})
	fault("mapreduce SIGKILL", 3, func(int) {
		time.Sleep(time.Duration(rand.Int64N(int64(2 * time.Second)))) // somewhere in the 2 s cycle
		crash(f.Mapreduce.Process())
	})
	fault("primary database down 5 s", 1, func(int) {
		// Patroni hands the leader key to the synchronous standby as it
		// stops; the member rejoins as a replica when it is back.
		old := f.Primary
		if err := old.Stop(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second) // more than two mapreduce intervals
		if err := f.StartDB(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Leader(ctx); err != nil {
			t.Fatal(err)
		}
		createdAfter(3)
	})
	dropped := func() float64 {
		v, err := metricOf(admin[skewed], token, `shortfleet_proxy_log_records_total{result="dropped"}`)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var droppedFull float64
	fault("log disk full", 1, func(int) {
		d0 := dropped()
		free := fillDisk(t, smallDisk)
		waitUntil(t, ctx, func() bool { return dropped() > d0+100 })
		free()
		// Logging resumes by itself: records are written again.
		w0, _ := metricOf(admin[skewed], token, `shortfleet_proxy_log_records_total{result="written"}`)
		waitUntil(t, ctx, func() bool {
			w, _ := metricOf(admin[skewed], token, `shortfleet_proxy_log_records_total{result="written"}`)
			return w > w0+100
		})
		droppedFull = dropped() - d0
	})
	var corrupted struct {
		name   string
		clicks map[hourKey]counts
	}
	fault("sealed segment corrupted on disk", 1, func(int) {
		// Stop the daemon so the segment is corrupted before it is pulled.
		if err := f.Mapreduce.Stop(); err != nil {
			t.Fatal(err)
		}
		var entries []logfmt.Entry
		waitUntil(t, ctx, func() bool {
			entries, _ = logfmt.ReadManifest(logDirs[0])
			return len(entries) > 0 && !ingested(f, entries[len(entries)-1].Name)
		})
		e := entries[len(entries)-1]
		path := filepath.Join(logDirs[0], e.Name)
		corrupted.name = e.Name
		corrupted.clicks = segmentClicks(t, path)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(data) / 3; i < len(data)/3+64 && i < len(data); i++ {
			data[i] ^= 0xA5
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := f.Mapreduce.Start(ctx, "admin"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, ctx, func() bool { return quarantined(f, e.Name) })
	})
	cc.pause()
	cr.end()
	elapsed := time.Since(start)

	// Before any proxy is restarted, the stats equal the sealed segments
	// on disk, once every proxy has sealed what it wrote and lists nothing
	// pending: a segment a running proxy recovered after its disk filled
	// must reach the stats without a restart, which the restarts below
	// (each proxy's start-up indexes its folder afresh) would hide. Counted
	// again if a segment was sealed meanwhile.
	var twiceLive, missedLive, diskLive int64
	for {
		waitUntil(t, ctx, func() bool { return caughtUp(t, logDirs, admin, token) })
		sealed := sealedCount(t, logDirs)
		twiceLive, missedLive, diskLive = statsAgainstLogs(t, f, logDirs, corrupted.name, codeOf)
		if sealedCount(t, logDirs) == sealed {
			break
		}
	}
	t.Logf("before any restart: stats against the %d clicks in sealed segments: %d counted twice, %d missed", diskLive, twiceLive, missedLive)
	if twiceLive != 0 || missedLive != 0 {
		t.Errorf("before any restart, stats differ from the proxies' sealed segments: %d counted twice, %d missed", twiceLive, missedLive)
	}

	// Seal everything: each proxy stopped with SIGTERM and started again
	// (mapreduce pulls through them), then one last run.
	if err := f.Mapreduce.Stop(); err != nil {
		t.Fatal(err)
	}
	sealAll()
	if out, err := f.MapreduceOnce(ctx); err != nil {
		t.Fatalf("last mapreduce run: %v\n%s", err, out)
	}

	// What clients saw.
	ok := cc.answered()
	if n := cc.failed.Load(); n != 0 {
		t.Errorf("%d of %d redirects failed, want 0: %v", n, ok+n, cc.firstFails)
	}
	cr.mu.Lock()
	acked, statuses := cr.acked, cr.status
	cr.mu.Unlock()
	for s, n := range statuses {
		// 0: no answer, while the primary app itself was down.
		if s != http.StatusCreated && s != http.StatusServiceUnavailable && s != 0 {
			t.Errorf("%d creations answered %d, want only 201 or 503", n, s)
		}
	}
	lostLinks := missingLinks(t, f, acked)
	if lostLinks != 0 {
		t.Errorf("%d of %d acknowledged links are missing", lostLinks, len(acked))
	}

	// What the stats recorded.
	twice, missed, diskTotal := statsAgainstLogs(t, f, logDirs, corrupted.name, codeOf)
	var corruptTotal int64
	for _, c := range corrupted.clicks {
		corruptTotal += c.clicks
	}
	lost := ok - diskTotal - corruptTotal
	t.Logf("in %s: %d redirects answered to clients, %d failed; %d links acknowledged, %d lost; creations by status %v",
		elapsed.Round(time.Second), ok, cc.failed.Load(), len(acked), lostLinks, statuses)
	t.Logf("stats: %d clicks counted twice, %d missed, against %d on the proxies' disks; %d clicks held back in the quarantined segment %s",
		twice, missed, diskTotal, corruptTotal, corrupted.name)
	t.Logf("clicks between answer and disk: %d lost (%d dropped while the disk was full, the rest unflushed at %d proxy SIGKILLs, flush interval %s)",
		lost, int64(droppedFull), proxyKills, flush)
	if twice != 0 || missed != 0 {
		t.Errorf("stats differ from the proxies' logs: %d counted twice, %d missed", twice, missed)
	}
	if corruptTotal == 0 || quarantinedRows(t, f, corrupted.name) == 0 {
		t.Errorf("the corrupted segment %s held no clicks or was not quarantined", corrupted.name)
	}
	// A negative loss would be clicks on disk that no client saw answered.
	if lost < int64(droppedFull) {
		t.Errorf("%d clicks lost, fewer than the %d the proxy counted as dropped", lost, int64(droppedFull))
	}
	midRun := unfinishedRuns(t, f)
	t.Logf("mapreduce runs that a SIGKILL or an outage cut short (started, never finished): %d", midRun)
	// The skewed proxy's records carry its clock's time, and the stats,
	// equal to the logs per hour, put its clicks in the hours it gave.
	entries, err := logfmt.ReadManifest(smallDisk)
	if err != nil || len(entries) == 0 {
		t.Fatalf("proxy-03's manifest: %v, %d entries", err, len(entries))
	}
	ahead := time.Unix(0, entries[len(entries)-1].MaxTime).Sub(time.Now())
	t.Logf("proxy-03's last record is stamped %s ahead of this machine's clock", ahead.Round(time.Second))
	if ahead < 3*time.Minute {
		t.Errorf("proxy-03's records are %s ahead, want its 4 minutes", ahead)
	}
	writeFaultFigures(t, figures, ok, cc.failed.Load(), len(acked), lostLinks, twice, missed, lost, int64(droppedFull), corruptTotal, [3]int64{diskLive, twiceLive, missedLive})
}

// statsAgainstLogs compares the stats, per link and hour, with the clicks
// in the sealed segments of dirs but the one named skip: the clicks counted
// more than the logs have, those counted fewer, and the logs' total.
func statsAgainstLogs(t *testing.T, f *localfleet.Fleet, dirs []string, skip string, codeOf map[int64]string) (twice, missed, total int64) {
	t.Helper()
	onDisk := map[hourKey]counts{}
	for _, dir := range dirs {
		addLogged(t, dir, skip, codeOf, onDisk)
	}
	got := statsOf(t, f, codeOf)
	for k, w := range onDisk {
		total += w.clicks
		if d := got[k].clicks - w.clicks; d > 0 {
			twice += d
		} else {
			missed -= d
		}
	}
	for k, g := range got {
		if _, ok := onDisk[k]; !ok {
			twice += g.clicks
		}
	}
	return twice, missed, total
}

// caughtUp reports whether every proxy has sealed what it wrote (its log
// folder, dirs[i], holds no open segment) and lists no segment as pending
// on its admin listener, admin[i]: the mapreduce job has had all there is.
func caughtUp(t *testing.T, dirs, admin []string, token string) bool {
	t.Helper()
	for i, dir := range dirs {
		open, err := filepath.Glob(filepath.Join(dir, "*.open"))
		if err != nil {
			t.Fatal(err)
		}
		if len(open) > 0 {
			return false
		}
		l, _, err := ship.Client{BaseURL: admin[i], Token: token}.List(context.Background(), false)
		if se := (*ship.StatusError)(nil); errors.As(err, &se) {
			t.Fatalf("list %s's segments: %v", admin[i], err)
		}
		if err != nil {
			return false // restarting: not caught up yet
		}
		if len(l.Segments) > 0 {
			return false
		}
	}
	return true
}

// sealedCount is how many sealed segments the manifests of dirs list.
func sealedCount(t *testing.T, dirs []string) (n int) {
	t.Helper()
	for _, dir := range dirs {
		entries, err := logfmt.ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		n += len(entries)
	}
	return n
}

// unfinishedRuns counts the mapreduce runs recorded as started that
// never finished nor recorded an error: those a SIGKILL cut short.
func unfinishedRuns(t *testing.T, f *localfleet.Fleet) int {
	t.Helper()
	var n int
	if err := queryPrimary(f, []any{&n}, `SELECT count(*) FROM mapreduce_runs WHERE finished_at IS NULL AND error IS NULL`); err != nil {
		t.Fatal(err)
	}
	return n
}

// fillDisk fills the filesystem holding dir and returns the function that
// frees it.
func fillDisk(t *testing.T, dir string) func() {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	fh, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	block := bytes.Repeat([]byte{'x'}, 64<<10)
	for err == nil {
		_, err = fh.Write(block)
	}
	for err == nil || errors.Is(err, syscall.ENOSPC) && len(block) > 1 { // fill the last bytes too
		block = block[:len(block)/2]
		_, err = fh.Write(block)
	}
	fh.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
	}
	return func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}
}

// ingested reports whether the ledger has the segment.
func ingested(f *localfleet.Fleet, name string) bool { return ledgerStatus(f, name) != "" }

func quarantined(f *localfleet.Fleet, name string) bool {
	return ledgerStatus(f, name) == "quarantined"
}

func ledgerStatus(f *localfleet.Fleet, name string) string {
	var status string
	_ = queryPrimary(f, []any{&status}, `SELECT status FROM ingested_segments WHERE name = $1`, name) // "" while the primary is down: not yet
	return status
}

func quarantinedRows(t *testing.T, f *localfleet.Fleet, name string) int64 {
	t.Helper()
	var rows int64
	if err := queryPrimary(f, []any{&rows}, `SELECT rows FROM ingested_segments WHERE name = $1 AND status = 'quarantined'`, name); err != nil {
		t.Fatalf("ledger row of %s: %v", name, err)
	}
	return rows
}

// segmentClicks counts a segment's redirects per link and hour.
func segmentClicks(t *testing.T, path string) map[hourKey]counts {
	t.Helper()
	out := map[hourKey]counts{}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	rows, err := logfmt.ReadAll(fh)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.LinkID == 0 || !logfmt.IsRedirect(r.Status) {
			continue
		}
		k := hourKey{strconv.FormatInt(r.LinkID, 10), time.Unix(0, r.Time).UTC().Truncate(time.Hour)}
		c := out[k]
		c.clicks++
		out[k] = c
	}
	return out
}

// addLogged adds the redirects of every sealed segment in dir but skip to
// out, per link and hour.
func addLogged(t *testing.T, dir, skip string, codeOf map[int64]string, out map[hourKey]counts) {
	t.Helper()
	entries, err := logfmt.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name == skip {
			continue
		}
		path := filepath.Join(dir, e.Name)
		for k, c := range segmentClicks(t, path) {
			id, _ := strconv.ParseInt(k.link, 10, 64)
			k.link = codeOf[id]
			o := out[k]
			o.clicks += c.clicks
			out[k] = o
		}
	}
}

// fleetCodec is the fleet's code codec, from its secret key.
func fleetCodec(t *testing.T, f *localfleet.Fleet) *codes.Codec {
	t.Helper()
	key, err := hex.DecodeString(f.Secrets.CodeKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := codes.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// queryPrimary runs a one-row query on the primary database; an error
// means the row is missing or the primary is down.
func queryPrimary(f *localfleet.Fleet, dest []any, sql string, args ...any) error {
	ctx := context.Background()
	conn, err := f.Primary.Connect(ctx, localfleet.Database)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql, args...).Scan(dest...)
}

// missingLinks counts the acknowledged links the primary does not have.
func missingLinks(t *testing.T, f *localfleet.Fleet, acked []link) int {
	t.Helper()
	codec := fleetCodec(t, f)
	ids := make([]int64, len(acked))
	for i, l := range acked {
		id, err := codec.DecodeString(l.Code)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	var found int
	if err := queryPrimary(f, []any{&found}, `SELECT count(*) FROM links WHERE id = ANY($1)`, ids); err != nil {
		t.Fatal(err)
	}
	return len(acked) - found
}

// writeFaultFigures writes the drill's figures as a Markdown table to
// $SHORTFLEET_FAULT_REPORT when set (the README's table comes from it).
// live is the comparison made before any proxy restarted: clicks in
// sealed segments, counted twice, missed.
func writeFaultFigures(t *testing.T, figs []faultFigures, ok, failed int64, acked, lostLinks int, twice, missed, lost, dropped, held int64, live [3]int64) {
	path := os.Getenv("SHORTFLEET_FAULT_REPORT")
	if path == "" {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| fault (times) | redirects during it | failed | links created | creations refused (503) | creations unanswered |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, f := range figs {
		fmt.Fprintf(&b, "| %s (×%d) | %d | %d | %d | %d | %d |\n", f.name, f.times, f.redirects, f.failed, f.created, f.refused, f.unanswered)
	}
	fmt.Fprintf(&b, "\nWhole drill: %d redirects answered, %d failed; %d links acknowledged, %d lost; stats against the proxies' logs: %d clicks counted twice, %d missed; %d clicks lost between answer and disk (%d dropped while the disk was full, the rest unflushed at proxy SIGKILLs); %d clicks held back in the quarantined segment.\n",
		ok, failed, acked, lostLinks, twice, missed, lost, dropped, held)
	fmt.Fprintf(&b, "\nBefore any proxy restarted (once every proxy had sealed what it wrote and listed nothing pending): stats against the %d clicks in sealed segments: %d counted twice, %d missed.\n", live[0], live[1], live[2])
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
}

// TestSegmentCorruptedInTransit puts a man in the middle between the
// mapreduce job and a proxy's segment API that damages the first copy of
// every segment it passes. The job verifies each copy against the
// manifest's checksum, fetches a damaged one again, and ingests it: no
// segment is quarantined and the stats equal the proxy's log.
func TestSegmentCorruptedInTransit(t *testing.T) {
	t.Parallel() // functional, not timed: three at a time (make test -parallel 3), after the timed drills, to keep make test under 20 minutes
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := startFleet(t, 1)
	links, codeOf := setupLinks(t, f, 5)
	traffic(t, f, links, 300, 3)
	if err := f.Proxies[0].Stop(); err != nil { // seal
		t.Fatal(err)
	}
	if err := f.Proxies[0].Start(ctx, "redirect", "admin"); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(f.AdminURLs()[0])
	var mu sync.Mutex
	damaged := map[string]bool{}
	mitm := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
			path := resp.Request.URL.Path
			if !strings.Contains(path, "/segments/") || resp.StatusCode != http.StatusOK {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if damaged[path] {
				return nil
			}
			damaged[path] = true
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			data[len(data)/2] ^= 0xFF
			resp.Body = io.NopCloser(bytes.NewReader(data))
			return nil
		},
	})
	defer mitm.Close()
	out, err := f.Command(ctx, "mapreduce", "-once", "-proxies", mitm.URL).CombinedOutput()
	if err != nil {
		t.Fatalf("mapreduce -once: %v\n%s", err, out)
	}
	if len(damaged) == 0 {
		t.Fatal("no segment passed the man in the middle")
	}
	if !strings.Contains(string(out), "fetching it again") {
		t.Errorf("the job did not say it fetched a damaged segment again:\n%s", out)
	}
	var quarantinedSegs, ingestedSegs int
	if err := queryPrimary(f, []any{&quarantinedSegs, &ingestedSegs},
		`SELECT count(*) FILTER (WHERE status = 'quarantined'), count(*) FILTER (WHERE status = 'ingested') FROM ingested_segments`); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d segments damaged in transit once: %d ingested, %d quarantined", len(damaged), ingestedSegs, quarantinedSegs)
	if quarantinedSegs != 0 || ingestedSegs != len(damaged) {
		t.Errorf("%d ingested, %d quarantined; want all %d ingested", ingestedSegs, quarantinedSegs, len(damaged))
	}
	sameCounts(t, statsOf(t, f, codeOf), logged(t, f, 1, codeOf))
}
